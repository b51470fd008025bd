"""The API key check of Supabase's API gateway, before any service: what a wrongly configured client meets."""

from __future__ import annotations

import httpx
import jwt as pyjwt
import pytest
from postgrest.exceptions import APIError
from supabase import AsyncClientOptions, acreate_client

from devstack.gateway.keys import BAD_KEY, NO_KEY
from tests.integration.gateway.conftest import ALICE_EMAIL, PASSWORD, Gateway

GUARDED = [
    ("GET", "/rest/v1/chats?select=id"),
    ("POST", "/rest/v1/rpc/list_chats"),
    ("POST", "/auth/v1/token?grant_type=password"),
    ("GET", "/auth/v1/health"),
    ("GET", "/auth/v1/user"),
    ("POST", "/realtime/v1/api/broadcast"),
]


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_a_request_without_an_api_key_is_refused_before_the_service(
    http: httpx.AsyncClient, gateway: Gateway, method: str, path: str
) -> None:
    # A bearer token alone is not enough: Kong's key-auth looks only at the API key.
    response = await http.request(method, path, headers={"Authorization": f"Bearer {gateway.tokens[ALICE_EMAIL]}"})
    assert (response.status_code, response.json()) == (401, NO_KEY)


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_a_key_that_is_not_the_projects_is_refused(
    http: httpx.AsyncClient, gateway: Gateway, method: str, path: str
) -> None:
    other_project = pyjwt.encode({"role": "anon", "iss": "supabase"}, "another project's secret " * 2, "HS256")
    for key in ("not-a-key", other_project, gateway.tokens[ALICE_EMAIL], gateway.anon_key[:-2]):
        response = await http.request(method, path, headers={"apikey": key})
        assert (response.status_code, response.json()) == (401, BAD_KEY), key


async def test_the_projects_keys_pass_in_the_header_or_the_query(http: httpx.AsyncClient, gateway: Gateway) -> None:
    for key in (gateway.anon_key, gateway.service_role_key):
        assert (await http.get("/auth/v1/health", headers={"ApiKey": key})).status_code == 200
        assert (await http.get("/auth/v1/health", params={"apikey": key})).status_code == 200


async def test_open_routes_and_the_gateway_health_need_no_key(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).status_code == 200
    # GoTrue's e-mail link and OAuth redirect routes are open in Supabase's Kong configuration: whatever the
    # service answers (the devstack has no e-mail links), it is not the key check's 401.
    for path in ("/auth/v1/verify", "/auth/v1/callback", "/auth/v1/authorize"):
        response = await http.get(path)
        assert response.status_code != 401, path


async def test_the_official_client_with_a_wrong_key_gets_supabases_answer(gateway: Gateway) -> None:
    async with httpx.AsyncClient(timeout=30) as shared:
        client = await acreate_client(gateway.url, "not-the-anon-key", AsyncClientOptions(httpx_client=shared))
        with pytest.raises(APIError) as error:
            await client.table("chats").select("id").execute()
        assert error.value.message == BAD_KEY["message"]
        with pytest.raises(Exception, match="Invalid API key"):
            await client.auth.sign_in_with_password({"email": ALICE_EMAIL, "password": PASSWORD})
