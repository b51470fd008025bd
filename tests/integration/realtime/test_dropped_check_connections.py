"""Permission checks on pool connections the database dropped (a restart, a terminated backend).

A restart ends every server process; the gateway's pooled connections hear the server's last message,
"terminating connection", while idle, and notice the closed socket only a moment later. A visibility
check that takes one of them in that moment must fail as the capture's *transient* errors do, so that
the batch is read again once the database answers: any other error leaves the subscribers "undecided"
(a ``system`` error instead of the change), which lost about one change in thirty restarts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from devstack.gateway.realtime import catalog
from devstack.gateway.realtime.authz import Authorizer
from devstack.gateway.realtime.changes import TRANSIENT_ERRORS
from devstack.gateway.rest.runner import reset_connection
from tests.conftest import StackHandle

pytestmark = pytest.mark.integration

ROUNDS = 20
"""Each round drops the pool's connections and checks at once: most rounds meet a dropped connection."""


@pytest.fixture
async def pools(stack: StackHandle) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool, str]]:
    """An API pool made as the gateway makes it (tagged, to be found and dropped), and an admin pool."""
    tag = f"dropped-checks-{uuid.uuid4().hex[:8]}"
    api = await asyncpg.create_pool(
        stack.config.role_db_url("authenticator"),
        min_size=2,
        max_size=4,
        reset=reset_connection,
        server_settings={"application_name": tag},
    )
    admin = await asyncpg.create_pool(stack.db_url, min_size=1, max_size=2)
    try:
        yield api, admin, tag
    finally:
        await api.close()
        await admin.close()


async def test_a_check_on_a_connection_the_database_dropped_fails_as_transient(
    pools: tuple[asyncpg.Pool, asyncpg.Pool, str],
) -> None:
    api, admin, tag = pools
    authorizer = Authorizer(api, admin)
    async with admin.acquire() as conn:
        table = (await catalog.load(conn)).published[("public", "chat_messages")]
    group = ("authenticated", json.dumps({"sub": str(uuid.uuid4()), "role": "authenticated"}))
    dropped = 0
    for _ in range(ROUNDS):
        async with admin.acquire() as conn:
            await conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1", tag
            )
        try:
            seen = await authorizer.visible([group], table, [{"id": str(uuid.uuid4())}])
        except TRANSIENT_ERRORS:  # anything else fails the test
            dropped += 1
        else:
            assert seen == {group: set()}  # a fresh connection answered: no such row
    assert dropped > 0, "no check met a dropped connection"
