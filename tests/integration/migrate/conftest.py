"""Fixtures for chat_migrate against real services: a legacy Redis and hosted-like Supabase databases.

The legacy store lives in a redis-server of its own (the stack's Redis is an LRU cache). Each test gets
a fresh database cloned from a template in the shared stack's cluster, migrated as a non-superuser
owner role exactly as `supabase db push` leaves a hosted project (see tests/legacy/hosted.py), so a run
can be compared with the database's state before it. Tests that need the gateway (sign-in through the
official client) use the stack's own database instead, and roll back what they migrated.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from chat_migrate.progress import Reporter
from tests.conftest import StackHandle
from tests.legacy.dirt import DirtyStore, write_dirty_store
from tests.legacy.hosted import HostedDb, hosted_database
from tests.legacy.server import LegacyRedis, legacy_redis
from tests.legacy.writer import LegacyServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def legacy_server() -> Iterator[LegacyRedis]:
    with legacy_redis() as server:
        yield server


@dataclass
class Legacy:
    """The legacy Redis, emptied for this test, with a client and the server's writes."""

    server: LegacyRedis
    client: redis.Redis

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def writer(self) -> LegacyServer:
        return LegacyServer(self.client)


@pytest.fixture
def legacy(legacy_server: LegacyRedis) -> Iterator[Legacy]:
    client = legacy_server.client()
    client.flushall()
    try:
        yield Legacy(legacy_server, client)
    finally:
        client.flushall()
        client.close()


@pytest.fixture
def dirty(legacy: Legacy) -> DirtyStore:
    return write_dirty_store(legacy.writer)


@pytest.fixture
async def hosted(stack: StackHandle) -> AsyncIterator[HostedDb]:
    async with hosted_database(stack.db_url) as db:
        yield db


@pytest.fixture
def quiet() -> Reporter:
    return Reporter(io.StringIO(), tty=False)


def emails_csv(tmp_path: Any, rows: dict[str, str]) -> Any:
    path = tmp_path / "emails.csv"
    path.write_text("username,email\n" + "".join(f"{name},{address}\n" for name, address in rows.items()))
    return path
