"""After a migration, legacy users sign in with their old password through the official client, and row
level security shows each of them their own rooms only. Runs on the stack's own database (the gateway
serves that one) and rolls back afterwards, which must leave it exactly as it was."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthApiError

from chat_migrate import ids
from chat_migrate.migrate import Options, run
from chat_migrate.progress import Reporter
from chat_migrate.rollback import rollback
from tests.conftest import StackHandle
from tests.integration.migrate.conftest import Legacy, emails_csv
from tests.legacy.dirt import DOMAIN, PASSWORDS, DirtyStore
from tests.legacy.hosted import table_fingerprint

pytestmark = pytest.mark.integration


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def client_for(stack: StackHandle, http: httpx.AsyncClient) -> AsyncClient:
    options = AsyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False)
    return await acreate_client(stack.api_url, stack.anon_key, options)


async def state(url: str) -> dict[str, tuple[int, str]]:
    tables = await table_fingerprint(url, ("public", "auth"))
    return {k: v for k, v in tables.items() if k.startswith("public.") or k in ("auth.users", "auth.identities")}


async def test_legacy_password_and_rls_through_the_official_client(
    legacy: Legacy, dirty: DirtyStore, stack: StackHandle, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    before = await state(stack.db_url)
    csv = emails_csv(tmp_path, {"dave": f"dave.two@{DOMAIN}"})
    quiet = Reporter(io.StringIO(), tty=False)
    summary = await run(Options(legacy.url, stack.db_url, email_domain=DOMAIN, emails_file=csv), quiet)
    try:
        alice = await client_for(stack, http)
        session = await alice.auth.sign_in_with_password({"email": f"alice@{DOMAIN}", "password": PASSWORDS["alice"]})
        assert session.user is not None and session.user.id == str(ids.user_id(dirty.users["alice"]))

        chats = (await alice.table("chat_sessions").select("id, title").execute()).data
        assert {row["title"] for row in chats} == {"General", "alice & bob", f"alice & deleted user {dirty.gone_user}"}
        messages = (await alice.table("chat_messages").select("session_id").execute()).data
        assert {row["session_id"] for row in messages} == {row["id"] for row in chats}
        recent = (await alice.rpc("recent_chats", {}).execute()).data
        assert {row["unread_count"] for row in recent} == {0}  # migrated history counts as read

        bob = await client_for(stack, http)
        await bob.auth.sign_in_with_password({"email": f"bob@{DOMAIN}", "password": PASSWORDS["bob"]})
        titles = {row["title"] for row in (await bob.table("chat_sessions").select("title").execute()).data}
        assert titles == {"General", "alice & bob"}
        book = await bob.table("chat_messages").select("id").eq("session_id", str(ids.chat_id("5"))).execute()
        assert book.data == []

        stranger = await client_for(stack, http)
        with pytest.raises(AuthApiError):
            await stranger.auth.sign_in_with_password({"email": f"alice@{DOMAIN}", "password": PASSWORDS["bob"]})
    finally:
        await rollback(stack.db_url, summary["run"], False, quiet)
    assert await state(stack.db_url) == before
    conn = await asyncpg.connect(stack.db_url)
    try:  # the bookkeeping of the rolled-back run is all that is left; other suites share this database
        await conn.execute("drop schema chat_migrate cascade")
    finally:
        await conn.close()
