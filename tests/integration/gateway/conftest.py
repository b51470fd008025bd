"""Fixtures for the gateway's auth and REST services, driven through the official ``supabase`` client.

Seed users sign in once per session (bcrypt is slow on purpose); each test builds its own clients on one
``httpx`` client that is closed afterwards. Tests that write use chats and users of their own, so the
seed's history stays as other suites expect it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase.lib.client_options import DEFAULT_HEADERS

from tests.conftest import StackHandle
from tests.integration.db.conftest import Db

PASSWORD = "password123"
ALICE_EMAIL = "alice@example.com"
BOB_EMAIL = "bob@example.com"
CAROL_EMAIL = "carol@example.com"


@dataclass(frozen=True)
class Gateway:
    """The shared stack's API, with an access token per seed user."""

    url: str
    anon_key: str
    service_role_key: str
    jwt_secret: str
    tokens: dict[str, str]

    @property
    def rest(self) -> str:
        return f"{self.url}/rest/v1"

    @property
    def auth(self) -> str:
        return f"{self.url}/auth/v1"

    def headers(self, user: str | None = None, *, token: str | None = None) -> dict[str, str]:
        """What the client sends on REST calls: ``apikey`` plus Bearer (the anon key when signed out)."""
        bearer = token or (self.tokens[user] if user else self.anon_key)
        return {"apikey": self.anon_key, "Authorization": f"Bearer {bearer}"}


def sign_in_sync(url: str, anon_key: str, email: str, password: str = PASSWORD) -> dict[str, object]:
    response = httpx.post(
        f"{url}/auth/v1/token",
        params={"grant_type": "password"},
        json={"email": email, "password": password},
        headers={"apikey": anon_key},
    )
    response.raise_for_status()
    session: dict[str, object] = response.json()
    return session


@pytest.fixture(scope="session")
def gateway(stack: StackHandle) -> Gateway:
    tokens = {
        email: str(sign_in_sync(stack.api_url, stack.anon_key, email)["access_token"])
        for email in (ALICE_EMAIL, BOB_EMAIL, CAROL_EMAIL)
    }
    return Gateway(stack.api_url, stack.anon_key, stack.service_role_key, str(stack.info["jwt_secret"]), tokens)


ClientFactory = Callable[..., Awaitable[AsyncClient]]


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client, for what the official client hides (status codes, headers)."""
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client


@pytest.fixture
async def make_client(gateway: Gateway, http: httpx.AsyncClient) -> AsyncIterator[ClientFactory]:
    """``await make_client()`` is a signed-out official client; ``make_client(ALICE_EMAIL)`` acts as Alice.

    Acting as a seed user passes their access token in the client's headers, the supported way to use a
    user's JWT without a sign-in round (sign-in itself is tested in test_auth.py).
    """
    shared = httpx.AsyncClient(timeout=30)

    async def make(user: str | None = None, *, token: str | None = None) -> AsyncClient:
        headers = dict(DEFAULT_HEADERS)
        if user or token:
            headers["Authorization"] = f"Bearer {token or gateway.tokens[str(user)]}"
        options = AsyncClientOptions(headers=headers, httpx_client=shared, auto_refresh_token=False)
        return await acreate_client(gateway.url, gateway.anon_key, options)

    yield make
    await shared.aclose()


@pytest.fixture
async def db(stack: StackHandle) -> AsyncIterator[Db]:
    pool = await asyncpg.create_pool(stack.db_url, min_size=1, max_size=4)
    try:
        yield Db(pool)
    finally:
        await pool.close()


@pytest.fixture
def unique() -> str:
    """A short token that makes names and e-mail addresses unique to one test run."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def stack_ttl(stack: StackHandle) -> int:
    """Lifetime of the shared stack's access tokens, in seconds."""
    return stack.config.access_token_ttl
