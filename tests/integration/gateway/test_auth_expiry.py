"""Short-lived access tokens on a stack of their own: REST refuses an expired one, the client refreshes.

The client schedules its refresh half a second before expiry when a token lives 10 s or less, so with
a 2-second token the whole cycle takes a few seconds. Waits are bounded and never measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase_auth.types import AuthChangeEvent, Session

from devstack.throwaway import throwaway_stack
from tests.integration.gateway.conftest import ALICE_EMAIL, PASSWORD

pytestmark = pytest.mark.integration

TTL = 2


@pytest.fixture(scope="module")
def short_stack() -> Iterator[dict[str, Any]]:
    with throwaway_stack(access_token_ttl=TTL) as (_, info):
        yield info


@pytest.fixture
async def client(short_stack: dict[str, Any]) -> AsyncIterator[AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        options = AsyncClientOptions(httpx_client=http, auto_refresh_token=True)
        client = await acreate_client(short_stack["api_url"], short_stack["anon_key"], options)
        yield client
        # Signing out stops the client's refresh timer before its HTTP client closes.
        await client.auth.sign_out({"scope": "local"})


async def test_an_expired_token_is_refused_and_the_client_refreshes_it(
    client: AsyncClient, short_stack: dict[str, Any]
) -> None:
    refreshed = asyncio.Event()
    sessions: list[Session] = []

    def on_change(event: AuthChangeEvent, session: Session | None) -> None:
        if event == "TOKEN_REFRESHED" and session is not None:
            sessions.append(session)
            refreshed.set()

    client.auth.on_auth_state_change(on_change)
    signed_in = await client.auth.sign_in_with_password({"email": ALICE_EMAIL, "password": PASSWORD})
    assert signed_in.session is not None
    first = signed_in.session
    assert first.expires_in == TTL
    before = await client.table("chat_sessions").select("id").execute()
    assert before.data  # Alice is a member of seed chats

    await asyncio.wait_for(refreshed.wait(), timeout=30)
    second = sessions[-1]
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token

    # Wait (bounded) until the first token has expired, then REST refuses it as PostgREST does.
    async with httpx.AsyncClient(base_url=short_stack["rest_url"], timeout=30) as http, asyncio.timeout(30):
        while True:
            response = await http.get(
                "/chat_sessions",
                params={"select": "id"},
                headers={"apikey": short_stack["anon_key"], "Authorization": f"Bearer {first.access_token}"},
            )
            if response.status_code != 200:
                break
            await asyncio.sleep(0.2)
    assert response.status_code == 401
    assert response.json() == {"code": "PGRST303", "details": None, "hint": None, "message": "JWT expired"}
    assert response.headers["www-authenticate"].startswith("Bearer")

    # The client keeps working with the token it refreshed on its own (again, if that one expired too).
    after = await client.table("chat_sessions").select("id").execute()
    assert sorted(row["id"] for row in after.data) == sorted(row["id"] for row in before.data)
