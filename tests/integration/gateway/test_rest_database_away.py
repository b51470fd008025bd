"""REST while PostgreSQL is away (stopped, shutting down, starting up): 503 in PostgREST's shape, never 500.

PostgREST answers a database it cannot use with 503 and a ``PGRST0xx`` code (``PGRST000``: no connection
could be had, ``PGRST001``: the connection broke under the request) and a ``Retry-After`` hint; clients
retry a 503 and treat a 500 as a bug. A request that reached the gateway while PostgreSQL was starting up
(57P03) or on a pooled connection the restart had killed used to get 500 ``PGRSTX00``.
Each test takes the database away, so the module runs on a stack of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from postgrest import APIError
from supabase import AsyncClientOptions, acreate_client

from devstack.procs import run_as_service_user
from devstack.throwaway import throwaway_stack
from devstack.tools import pg_tool
from tests.conftest import StackHandle
from tests.integration.gateway.conftest import ALICE_EMAIL, PASSWORD, sign_in_sync

pytestmark = pytest.mark.integration

ERROR_KEYS = {"code", "details", "hint", "message"}
# What a request may get while the database goes away or comes back: PostgREST's connection errors, or
# 57P01 (a fast shutdown ended the session: PostgreSQL's own words, 503 as PostgREST maps it).
AWAY_CODES = {"PGRST000", "PGRST001", "PGRST002", "57P01"}


@pytest.fixture(scope="module")
def own_stack() -> Iterator[StackHandle]:
    # Durable (fsync and synchronous commit on): a crash restart must keep every commit that was answered,
    # and an ephemeral stack acknowledges commits before their WAL is on disk.
    with throwaway_stack(ephemeral=False) as (stack, info):
        yield StackHandle(stack, info)


@pytest.fixture(scope="module")
def alice(own_stack: StackHandle) -> dict[str, Any]:
    """Alice's session on the module's stack (signed in while the database is up)."""
    return sign_in_sync(own_stack.api_url, own_stack.anon_key, ALICE_EMAIL, PASSWORD)


def stop_postgres(stack: StackHandle, mode: str = "fast") -> None:
    run_as_service_user(
        [pg_tool("pg_ctl"), "--pgdata", str(stack.config.pg_data), f"--mode={mode}", "--wait", "stop"], timeout=90
    )
    assert not stack.stack.postgres.running()


def headers(stack: StackHandle, session: dict[str, Any]) -> dict[str, str]:
    return {"apikey": stack.anon_key, "Authorization": f"Bearer {session['access_token']}"}


async def new_chat(stack: StackHandle, session: dict[str, Any]) -> uuid.UUID:
    chat = uuid.uuid4()
    user = session["user"]
    assert isinstance(user, dict)
    conn = await asyncpg.connect(stack.db_url)
    try:
        await conn.execute(
            "insert into public.chat_sessions (id, title, created_by) values ($1, 'database away', $2)",
            chat,
            uuid.UUID(user["id"]),
        )
    finally:
        await conn.close()
    return chat


def assert_away(response: httpx.Response) -> str:
    """``response`` is PostgREST's answer to a database it cannot use; returns its code."""
    assert response.status_code == 503, response.text
    body = response.json()
    assert isinstance(body, dict) and set(body) == ERROR_KEYS, body
    assert body["code"] in AWAY_CODES, body
    assert response.headers["content-type"].startswith("application/json")
    if body["code"].startswith("PGRST"):
        assert response.headers["proxy-status"] == f"PostgREST; error={body['code']}"
    assert response.headers["retry-after"].isdigit()
    return str(body["code"])


async def test_a_stopped_database_is_answered_503_pgrst000_and_served_again_once_it_is_back(
    own_stack: StackHandle, alice: dict[str, Any]
) -> None:
    chat = await new_chat(own_stack, alice)
    auth = headers(own_stack, alice)
    async with httpx.AsyncClient(base_url=f"{own_stack.api_url}/rest/v1", headers=auth, timeout=30) as http:
        # Fill the pool: its idle connections are the ones the restart kills.
        await asyncio.gather(*(http.get("/chat_messages", params={"select": "id", "limit": "1"}) for _ in range(8)))
        await asyncio.to_thread(stop_postgres, own_stack)
        try:
            read = await http.get("/chat_messages", params={"select": "id", "session_id": f"eq.{chat}"})
            write = await http.post(
                "/chat_messages",
                json={"id": str(uuid.uuid4()), "session_id": str(chat), "content": "while away"},
                headers={"Prefer": "return=minimal"},
            )
            assert assert_away(read) == "PGRST000"
            assert assert_away(write) == "PGRST000"
            # The official client raises it as an APIError with PostgREST's code.
            options = AsyncClientOptions(httpx_client=http, auto_refresh_token=False, postgrest_client_retry=False)
            client = await acreate_client(own_stack.api_url, own_stack.anon_key, options)
            client.postgrest.auth(str(alice["access_token"]))
            with pytest.raises(APIError) as caught:
                await client.table("chat_messages").select("id").limit(1).execute()
            assert caught.value.code == "PGRST000"
        finally:
            await asyncio.to_thread(own_stack.stack.postgres.start)
        # Back: every answer until the first success is a 503 (a pooled connection the stop killed may
        # serve one request), and one comes soon: the pool was flushed, not left to hand out the dead.
        answers: list[int] = []
        for _ in range(20):
            response = await http.post(
                "/chat_messages",
                json={"id": str(uuid.uuid4()), "session_id": str(chat), "content": "back"},
                headers={"Prefer": "return=minimal"},
            )
            answers.append(response.status_code)
            if response.status_code == 201:
                break
            assert_away(response)
            await asyncio.sleep(0.25)
        assert answers[-1] == 201, answers


@pytest.mark.parametrize("mode", ["fast", "immediate"], ids=["clean-restart", "crash-restart"])
async def test_writes_while_the_database_restarts_get_201_or_503_never_500(
    own_stack: StackHandle, alice: dict[str, Any], mode: str
) -> None:
    chat = await new_chat(own_stack, alice)
    auth = headers(own_stack, alice)
    answers: dict[str, httpx.Response] = {}
    done = asyncio.Event()

    async def writer(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            message = str(uuid.uuid4())
            answers[message] = await http.post(
                "/chat_messages",
                json={"id": message, "session_id": str(chat), "content": f"restart {mode}"},
                headers={"Prefer": "return=minimal"},
            )
            await asyncio.sleep(0.01)

    async with httpx.AsyncClient(base_url=f"{own_stack.api_url}/rest/v1", headers=auth, timeout=30) as http:
        writers = [asyncio.create_task(writer(http)) for _ in range(4)]
        try:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(stop_postgres, own_stack, mode)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(own_stack.stack.postgres.start)
            await asyncio.sleep(1.5)
        finally:
            done.set()
            await asyncio.gather(*writers)
    statuses = Counter(response.status_code for response in answers.values())
    assert set(statuses) <= {201, 503}, {
        status: [r.text for r in answers.values() if r.status_code == status][:3] for status in statuses
    }
    assert statuses[503] > 0  # the stream did run into the restart
    for response in answers.values():
        if response.status_code == 503:
            assert_away(response)
    # What was answered 201 is stored; nothing is stored twice.
    conn = await asyncpg.connect(own_stack.db_url)
    try:
        rows = await conn.fetch("select id from public.chat_messages where session_id = $1", chat)
        stored = Counter(str(row["id"]) for row in rows)
    finally:
        await conn.close()
    created = {message for message, response in answers.items() if response.status_code == 201}
    assert created <= set(stored)
    assert max(stored.values()) == 1
