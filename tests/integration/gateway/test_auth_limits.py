"""``[auth.rate_limit]`` on a stack of its own, with the limits low enough to reach: GoTrue's 429.

GoTrue allows a burst of 30 per client address on top of the configured rate (here 1 per 5 minutes, so
nothing refills during the test): the 31st request of a kind is refused with ``over_request_rate_limit``.
Sign-ins and refreshes share one bucket; sign-ups and user updates have one each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthApiError

from devstack.throwaway import throwaway_stack
from tests.integration.gateway.conftest import ALICE_EMAIL, PASSWORD

pytestmark = pytest.mark.integration

BURST = 30
LIMITED = {"token_refresh": 1.0, "sign_in_sign_ups": 1.0}
LIMIT_BODY = {"code": "over_request_rate_limit", "message": "Request rate limit reached"}


@pytest.fixture(scope="module")
def limited_stack() -> Iterator[dict[str, Any]]:
    with throwaway_stack(auth_rate_limits=LIMITED) as (_, info):
        yield info


@pytest.fixture
async def http(limited_stack: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=limited_stack["api_url"], headers={"apikey": limited_stack["anon_key"]}, timeout=30
    ) as client:
        yield client


async def _client(info: dict[str, Any], http: httpx.AsyncClient) -> AsyncClient:
    options = AsyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False)
    return await acreate_client(info["api_url"], info["anon_key"], options)


async def test_sign_ins_and_refreshes_share_one_limited_bucket(
    limited_stack: dict[str, Any], http: httpx.AsyncClient
) -> None:
    for _ in range(BURST):
        refused = await http.post(
            "/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": "nope"}
        )
        assert refused.json()["code"] == "refresh_token_not_found"
    limited = await http.post("/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": "x"})
    assert (limited.status_code, limited.json()) == (429, LIMIT_BODY)
    assert limited.headers["x-supabase-api-version"] == "2024-01-01"
    client = await _client(limited_stack, http)
    with pytest.raises(AuthApiError) as caught:
        await client.auth.sign_in_with_password({"email": ALICE_EMAIL, "password": PASSWORD})
    assert (caught.value.status, caught.value.code) == (429, "over_request_rate_limit")


async def test_sign_ups_and_user_updates_have_buckets_of_their_own(
    limited_stack: dict[str, Any], http: httpx.AsyncClient
) -> None:
    client = await _client(limited_stack, http)
    signed_up = await client.auth.sign_up({"email": "limited@example.com", "password": "limited-pass"})
    assert signed_up.session is not None
    for index in range(BURST - 1):
        weak = await http.post("/auth/v1/signup", json={"email": f"weak{index}@example.com", "password": "x"})
        assert weak.json()["code"] == "weak_password"
    limited = await http.post("/auth/v1/signup", json={"email": "one-more@example.com", "password": "long-enough"})
    assert (limited.status_code, limited.json()) == (429, LIMIT_BODY)

    bearer = {"Authorization": f"Bearer {signed_up.session.access_token}"}
    for index in range(BURST):
        updated = await http.put("/auth/v1/user", json={"data": {"n": index}}, headers=bearer)
        assert updated.status_code == 200
    limited = await http.put("/auth/v1/user", json={"data": {"n": "over"}}, headers=bearer)
    assert (limited.status_code, limited.json()) == (429, LIMIT_BODY)
    # Reading the user is not limited.
    assert (await http.get("/auth/v1/user", headers=bearer)).status_code == 200
