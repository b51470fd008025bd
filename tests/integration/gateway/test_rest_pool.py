"""REST and realtime share the ``authenticator`` pool: a REST request must give its connection back as it
found it. REST switches roles at session level (its statement then commits in its own round trip), and
``RESET ALL`` does not reset the role: without the pool's own reset, realtime's visibility checks ran as
the last REST caller's role and no push arrived."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from supabase import AsyncClientOptions, acreate_client

from tests.integration.db.conftest import ALICE, BOB, Db
from tests.integration.gateway.conftest import BOB_EMAIL, PASSWORD, Gateway

pytestmark = pytest.mark.integration


async def test_pushes_arrive_after_rest_requests_as_other_roles(gateway: Gateway, db: Db) -> None:
    chat = await db.new_chat(ALICE, BOB, title="pool reset")
    async with httpx.AsyncClient(timeout=30) as http:
        # Fill the pool with connections last used by anon, alice and the service role.
        for _ in range(25):
            for token in (gateway.anon_key, gateway.tokens["alice@example.com"], gateway.service_role_key):
                await http.get(
                    f"{gateway.rest}/chat_sessions",
                    params={"select": "id", "limit": "1"},
                    headers={"apikey": gateway.anon_key, "Authorization": f"Bearer {token}"},
                )
        options = AsyncClientOptions(httpx_client=http, auto_refresh_token=False)
        bob = await acreate_client(gateway.url, gateway.anon_key, options)
        await bob.auth.sign_in_with_password({"email": BOB_EMAIL, "password": PASSWORD})
        pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        channel = bob.channel(f"pool-{uuid.uuid4().hex[:8]}")
        channel.on_postgres_changes(
            "INSERT", schema="public", table="chat_messages", filter=f"session_id=eq.{chat}", callback=pushes.put_nowait
        )
        await channel.subscribe()
        try:
            message = await db.post(ALICE, chat, "through the shared pool")
            push = await asyncio.wait_for(pushes.get(), 15)
            assert push["data"]["record"]["id"] == str(message["id"])
        finally:
            await bob.remove_all_channels()
