"""Bad input to ``/rest/v1``: every case gets PostgREST's JSON error and changes nothing.

Injection attempts go through every place a request names something (filters, columns, order, select,
on_conflict, functions, tables, body keys); afterwards the database is compared with a snapshot.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError

from devstack.gateway.jwt import issue_access_token
from tests.integration.db.conftest import ALICE, BOB, Db
from tests.integration.gateway.conftest import ALICE_EMAIL, ClientFactory, Gateway

pytestmark = pytest.mark.integration

ERROR_KEYS = {"code", "details", "hint", "message"}


def _error(response: httpx.Response) -> dict[str, Any]:
    """The PostgREST error body of ``response``, checked for its shape."""
    body = response.json()
    assert isinstance(body, dict) and set(body) == ERROR_KEYS, body
    assert response.status_code not in (503, 520)  # the client would retry those
    return body


@pytest.fixture
async def chat(db: Db) -> uuid.UUID:
    chat = await db.new_chat(ALICE, BOB, title="error tests")
    await db.post(ALICE, chat, "the only message")
    return chat


async def _snapshot(db: Db) -> dict[str, Any]:
    """Row counts of every table the attacks aim at, and which tables exist."""
    counts = {}
    for table in (
        "public.chat_messages",
        "public.chat_sessions",
        "public.chat_members",
        "public.profiles",
        "public.gw_things",
        "auth.users",
    ):
        counts[table] = await db.pool.fetchval(f"select count(*) from {table}")
    tables = await db.pool.fetch("select schemaname, tablename from pg_tables where schemaname in ('public', 'auth')")
    counts["tables"] = sorted((row["schemaname"], row["tablename"]) for row in tables)
    counts["contents"] = await db.pool.fetchval("select string_agg(content, '|' order by id) from public.chat_messages")
    return counts


@pytest.fixture
async def unchanged(db: Db, test_schema: None) -> AsyncIterator[None]:
    """Fails the test if the database differs after it from before it."""
    before = await _snapshot(db)
    yield
    assert await _snapshot(db) == before


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"seq": "eq"}, 400, "PGRST100"),
        ({"seq": "equals.1"}, 400, "PGRST100"),
        ({"seq": "1"}, 400, "PGRST100"),
        ({"seq": "in.1,2"}, 400, "PGRST100"),
        ({"seq": "is.maybe"}, 400, "PGRST100"),
        ({"or": "(seq.eq.1"}, 400, "PGRST100"),
        ({"or": "seq.eq.1"}, 400, "PGRST100"),
        ({"or": "(seq.eq.1,bad)"}, 400, "PGRST100"),
        ({"and": "(seq.eq.1)x"}, 400, "PGRST100"),
        ({"order": "seq.sideways"}, 400, "PGRST100"),
        ({"limit": "ten"}, 400, "PGRST100"),
        ({"limit": "-1"}, 416, "PGRST103"),
        ({"select": "id,author(*)"}, 400, "PGRST200"),
        ({"select": "nope"}, 400, "42703"),
        ({"nope": "eq.1"}, 400, "42703"),
        ({"order": "nope.desc"}, 400, "42703"),
        ({"or": "(nope.eq.1,seq.eq.2)"}, 400, "42703"),
        ({"seq": "eq.abc"}, 400, "22P02"),
        ({"id": "in.(1,2)"}, 400, "22P02"),
        ({"created_at": "gt.last tuesday-ish"}, 400, "22007"),
    ],
)
async def test_malformed_queries_are_clean_errors(
    http: httpx.AsyncClient, gateway: Gateway, params: dict[str, str], status: int, code: str
) -> None:
    response = await http.get("/rest/v1/chat_messages", params=params, headers=gateway.headers(ALICE_EMAIL))
    assert response.status_code == status
    assert _error(response)["code"] == code
    assert response.headers["proxy-status"] == f"PostgREST; error={code}"


async def test_unknown_tables_and_methods(http: httpx.AsyncClient, gateway: Gateway) -> None:
    missing = await http.get("/rest/v1/no_such_table", headers=gateway.headers(ALICE_EMAIL))
    assert missing.status_code == 404
    assert _error(missing) == {
        "code": "PGRST205",
        "details": None,
        "hint": None,
        "message": "Could not find the table 'public.no_such_table' in the schema cache",
    }
    put = await http.put("/rest/v1/chat_messages", json={}, headers=gateway.headers(ALICE_EMAIL))
    assert (put.status_code, _error(put)["code"]) == (405, "PGRST117")


async def test_constraint_violations_map_to_postgrest_statuses(
    make_client: ClientFactory,
    http: httpx.AsyncClient,
    gateway: Gateway,
    chat: uuid.UUID,
    unique: str,
    test_schema: None,
) -> None:
    alice = gateway.headers(ALICE_EMAIL)
    await http.post("/rest/v1/gw_things", json={"name": f"{unique}-dup"}, headers=alice)
    cases = [
        ("chat_messages", {"session_id": str(chat), "content": "   "}, alice, 400, "23514"),
        ("gw_things", {"name": None}, alice, 400, "23502"),
        ("gw_things", {"name": f"{unique}-dup"}, alice, 409, "23505"),
        (
            "chat_members",
            {"session_id": str(chat), "user_id": str(uuid.uuid4())},
            {"apikey": gateway.service_role_key},
            409,
            "23503",
        ),
    ]
    for table, row, headers, status, code in cases:
        response = await http.post(f"/rest/v1/{table}", json=row, headers=headers)
        body = _error(response)
        assert (response.status_code, body["code"]) == (status, code), body
    assert "Key (user_id)" in str(body["details"])
    # The official client raises them as APIError with PostgreSQL's code and message.
    client = await make_client(ALICE_EMAIL)
    with pytest.raises(APIError) as caught:
        await client.table("gw_things").insert({"name": f"{unique}-dup"}).execute()
    assert caught.value.code == "23505"
    assert caught.value.message == 'duplicate key value violates unique constraint "gw_things_name_key"'


async def test_a_10_mb_body_is_refused_and_the_server_stays_healthy(
    http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID, unchanged: None
) -> None:
    huge = json.dumps([{"session_id": str(chat), "content": "x" * 1000}] * 10_000).encode()
    assert len(huge) > 10_000_000
    response = await http.post(
        "/rest/v1/chat_messages",
        content=huge,
        headers={**gateway.headers(ALICE_EMAIL), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert _error(response)["code"] == "PGRST413"

    async def chunks() -> AsyncIterator[bytes]:
        """No Content-Length: the limit must hold while reading the stream."""
        for _ in range(32):
            yield b" " * 65536

    streamed = await http.post(
        "/rest/v1/chat_messages",
        content=chunks(),
        headers={**gateway.headers(ALICE_EMAIL), "Content-Type": "application/json"},
    )
    assert streamed.request.headers.get("transfer-encoding") == "chunked"
    assert streamed.status_code == 413
    assert (await http.get("/health")).status_code == 200
    still = await http.get(
        "/rest/v1/chat_messages",
        params={"select": "content", "session_id": f"eq.{chat}"},
        headers=gateway.headers(ALICE_EMAIL),
    )
    assert still.json() == [{"content": "the only message"}]


@pytest.mark.parametrize(
    ("body", "method"),
    [
        (b"{not json", "POST"),
        (b"", "POST"),
        (b"[1, 2]", "POST"),
        (b'[{"content": "a"}, {"session_id": "b"}]', "POST"),
        (b"{not json", "PATCH"),
        (b'{"content": 1', "PATCH"),
    ],
)
async def test_invalid_bodies_are_pgrst102(
    http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID, body: bytes, method: str, unchanged: None
) -> None:
    response = await http.request(
        method,
        "/rest/v1/chat_messages",
        params={"id": f"eq.{uuid.uuid4()}"} if method == "PATCH" else None,
        content=body,
        headers={**gateway.headers(ALICE_EMAIL), "Content-Type": "application/json"},
    )
    assert (response.status_code, _error(response)["code"]) == (400, "PGRST102")


@pytest.mark.parametrize(
    ("body", "method", "status"),
    [(b"[]", "POST", 201), (b'"text"', "POST", 201), (b'"text"', "PATCH", 204), (b"[{}]", "PATCH", 204)],
)
async def test_bodies_without_rows_or_keys_change_nothing(
    http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID, body: bytes, method: str, status: int, unchanged: None
) -> None:
    """As in PostgREST: an empty array inserts nothing, a JSON scalar counts as one, no keys set nothing."""
    response = await http.request(
        method,
        "/rest/v1/chat_messages",
        params={"session_id": f"eq.{chat}"} if method == "PATCH" else None,
        content=body,
        headers={**gateway.headers(ALICE_EMAIL), "Content-Type": "application/json", "Prefer": "return=minimal"},
    )
    assert (response.status_code, response.content) == (status, b"")


def _unsigned(claims: dict[str, Any]) -> str:
    """A token with ``alg: none`` and no signature."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_forged_expired_and_malformed_tokens_are_refused(
    http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID
) -> None:
    wrong_secret, _ = issue_access_token(
        "not-the-secret-" * 3, user_id=ALICE, email=None, session_id=uuid.uuid4(), ttl=600
    )
    expired, _ = issue_access_token(
        gateway.jwt_secret, user_id=ALICE, email=None, session_id=uuid.uuid4(), ttl=60, now=time.time() - 600
    )
    service_claims = {"role": "service_role", "sub": str(ALICE), "exp": int(time.time()) + 600}
    cases = [
        (wrong_secret, "PGRST301"),
        (_unsigned(service_claims), "PGRST301"),
        ("garbage", "PGRST301"),
        ("a.b.c", "PGRST301"),
        (expired, "PGRST303"),
    ]
    for token, code in cases:
        response = await http.get(
            "/rest/v1/chat_messages",
            params={"session_id": f"eq.{chat}"},
            headers={"apikey": gateway.anon_key, "Authorization": f"Bearer {token}"},
        )
        assert (response.status_code, _error(response)["code"]) == (401, code), token
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert _error(response)["message"] == "JWT expired"
    for header in ("Bearer", "Basic dXNlcjpwYXNz"):
        response = await http.get(
            "/rest/v1/chat_messages", headers={"apikey": gateway.anon_key, "Authorization": header}
        )
        assert (response.status_code, _error(response)["code"]) == (401, "PGRST301"), header


INJECTED_VALUE = "x'); delete from public.chat_messages; drop table public.gw_things; --"


async def test_injection_through_filter_values_is_just_data(
    http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID, unchanged: None
) -> None:
    for params in (
        {"content": f"eq.{INJECTED_VALUE}"},
        {"content": f"like.*{INJECTED_VALUE}*"},
        {"content": f'in.("{INJECTED_VALUE}",b)'},
        {"or": f'(content.eq."{INJECTED_VALUE}",content.ilike.*\' or 1=1 --*)'},
        {"content": "eq.' or '1'='1"},
    ):
        response = await http.get(
            "/rest/v1/chat_messages",
            params={"session_id": f"eq.{chat}", **params},
            headers=gateway.headers(ALICE_EMAIL),
        )
        assert (response.status_code, response.json()) == (200, []), params
    typed = await http.get(
        "/rest/v1/chat_messages", params={"seq": "eq.1 or 1=1"}, headers=gateway.headers(ALICE_EMAIL)
    )
    assert (typed.status_code, _error(typed)["code"]) == (400, "22P02")


@pytest.mark.parametrize(
    "params",
    [
        {"content;drop table public.gw_things;--": "eq.1"},
        {'content" = content or "content': "eq.1"},
        {"order": "seq;delete from public.chat_messages"},
        {"order": "seq desc, (select 1)"},
        {"order": 'seq".desc'},
        {"select": "*,(select encrypted_password from auth.users)"},
        {"select": "id from auth.users--"},
        {"select": 'seq,"seq" from auth.users --'},
        {"select": 'x" from auth.users; --:seq'},
        {"select": "content::text from auth.users --"},
        {"select": "content::text);drop table public.gw_things;--"},
        {"or": "(content;drop table public.gw_things.eq.1)"},
    ],
)
async def test_injection_through_names_is_refused(
    http: httpx.AsyncClient, gateway: Gateway, params: dict[str, str], unchanged: None
) -> None:
    response = await http.get("/rest/v1/chat_messages", params=params, headers=gateway.headers(ALICE_EMAIL))
    assert response.status_code == 400, response.text
    assert _error(response)["code"] in ("PGRST100", "42703", "42704")


async def test_injection_through_writes_rpc_and_tables_is_refused(
    http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID, unchanged: None
) -> None:
    headers = {**gateway.headers(ALICE_EMAIL), "Prefer": "return=representation"}
    attempts = [
        ("POST", "/rest/v1/chat_messages", {"on_conflict": "id) do update set content = 'x' --"}, 400),
        ("POST", "/rest/v1/chat_messages", {"on_conflict": "id,content; drop table public.gw_things"}, 400),
        (
            "POST",
            "/rest/v1/chat_messages",
            {"columns": '"content","session_id""; drop table public.gw_things; --"'},
            400,
        ),
        ("POST", "/rest/v1/rpc/gw_add(1); drop table public.gw_things; --", None, 404),
        ("POST", "/rest/v1/rpc/pg_sleep", None, 404),
        ("POST", "/rest/v1/rpc/set_config", None, 404),
        ("GET", "/rest/v1/chat_messages; drop table public.gw_things", None, 404),
        ("GET", "/rest/v1/pg_authid", None, 404),
    ]
    for method, path, params, status in attempts:
        response = await http.request(
            method, path, params=params, json={"session_id": str(chat), "content": "x"}, headers=headers
        )
        assert response.status_code == status, (path, params, response.text)
        _error(response)
    bad_key = await http.post(
        "/rest/v1/chat_messages",
        json={"session_id": str(chat), 'content" = null; drop table public.gw_things; --': "x"},
        headers=headers,
    )
    assert (bad_key.status_code, _error(bad_key)["code"]) == (400, "PGRST204")
    bad_patch = await http.patch(
        "/rest/v1/chat_messages",
        params={"session_id": f"eq.{chat}"},
        json={"content = 'owned', sender_id": "x"},
        headers=headers,
    )
    assert (bad_patch.status_code, _error(bad_patch)["code"]) == (400, "PGRST204")
    bad_args = await http.post(
        "/rest/v1/rpc/gw_add", json={"a": "1); drop table public.gw_things; --"}, headers=headers
    )
    assert (bad_args.status_code, _error(bad_args)["code"]) == (400, "22P02")
