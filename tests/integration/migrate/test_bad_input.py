"""Bad input gets one clear line on standard error, a distinct exit code, and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from devstack.config import REPO_ROOT
from devstack.procs import free_port
from tests.conftest import StackHandle
from tests.integration.migrate.conftest import Legacy
from tests.legacy.dirt import DOMAIN, DirtyStore
from tests.legacy.hosted import HostedDb, table_fingerprint

pytestmark = pytest.mark.integration


def chat_migrate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_MIGRATE_")}
    return subprocess.run(
        [sys.executable, "-m", "chat_migrate", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{password}@{parts.hostname}:{parts.port}"))


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chat-migrate: ")
    assert "Traceback" not in result.stderr
    return lines[0]


async def fingerprint(db: HostedDb) -> dict[str, tuple[int, str]]:
    return await table_fingerprint(db.admin_url, ("public", "auth"))


async def bookkeeping(db: HostedDb) -> bool:
    conn = await asyncpg.connect(db.admin_url)
    try:
        return bool(await conn.fetchval("select exists (select from pg_namespace where nspname = 'chat_migrate')"))
    finally:
        await conn.close()


async def test_unreachable_redis(hosted: HostedDb) -> None:
    before = await fingerprint(hosted)
    result = chat_migrate(
        "run", "--redis", f"redis://127.0.0.1:{free_port()}/0", "--db-url", hosted.url, "--email-domain", DOMAIN
    )
    assert result.returncode == 3
    assert "cannot reach Redis at 127.0.0.1:" in one_line(result)
    assert await fingerprint(hosted) == before and not await bookkeeping(hosted)


async def test_wrong_redis_password(legacy: Legacy, dirty: DirtyStore, hosted: HostedDb) -> None:
    result = chat_migrate(
        "run", "--redis", with_password(legacy.url, "wrong"), "--db-url", hosted.url, "--email-domain", DOMAIN
    )
    assert result.returncode == 3
    assert (
        one_line(result)
        == f"chat-migrate: Redis at 127.0.0.1:{legacy.server.port} refused the password (check --redis)"
    )
    assert not await bookkeeping(hosted)


async def test_unreachable_database(legacy: Legacy, dirty: DirtyStore) -> None:
    port = free_port()
    result = chat_migrate(
        "run",
        "--redis",
        legacy.url,
        "--db-url",
        f"postgresql://postgres:x@127.0.0.1:{port}/postgres",
        "--email-domain",
        DOMAIN,
    )
    assert result.returncode == 3
    assert one_line(result).startswith(f"chat-migrate: cannot reach the database at 127.0.0.1:{port}")


async def test_wrong_database_password(legacy: Legacy, dirty: DirtyStore, hosted: HostedDb) -> None:
    result = chat_migrate(
        "run", "--redis", legacy.url, "--db-url", with_password(hosted.url, "wrong"), "--email-domain", DOMAIN
    )
    assert result.returncode == 3
    assert "refused the password for chat_migrator" in one_line(result)
    assert not await bookkeeping(hosted)


async def test_database_without_the_schema(legacy: Legacy, dirty: DirtyStore, stack: StackHandle) -> None:
    admin = await asyncpg.connect(stack.db_url)
    try:
        await admin.execute("drop database if exists migrate_empty with (force)")
        await admin.execute("create database migrate_empty")
    finally:
        await admin.close()
    empty = urlunsplit(urlsplit(stack.db_url)._replace(path="/migrate_empty"))
    try:
        for command in ("plan", "run"):
            result = chat_migrate(command, "--redis", legacy.url, "--db-url", empty, "--email-domain", DOMAIN, "--json")
            assert result.returncode == 3
            assert "the database has no desktop-chat schema" in one_line(result)
            assert json.loads(result.stdout)["ok"] is False
        conn = await asyncpg.connect(empty)
        try:
            assert await conn.fetchval("select count(*) from pg_namespace where nspname = 'chat_migrate'") == 0
        finally:
            await conn.close()
    finally:
        admin = await asyncpg.connect(stack.db_url)
        try:
            await admin.execute("drop database if exists migrate_empty with (force)")
        finally:
            await admin.close()


async def test_usage_errors_exit_2(legacy: Legacy, hosted: HostedDb, tmp_path: Path) -> None:
    result = chat_migrate("run", "--redis", legacy.url, "--db-url", hosted.url)
    assert result.returncode == 2
    assert "--email-domain DOMAIN and/or --emails FILE.csv" in one_line(result)
    bad = tmp_path / "emails.csv"
    bad.write_text("alice,not-an-address\n")
    result = chat_migrate("plan", "--redis", legacy.url, "--db-url", hosted.url, "--emails", str(bad))
    assert result.returncode == 2
    assert one_line(result) == f"chat-migrate: --emails {bad}:1: 'not-an-address' is not an e-mail address"
    result = chat_migrate("run", "--db-url", hosted.url, "--email-domain", DOMAIN)
    assert result.returncode == 2 and "--redis is required" in one_line(result)
    assert not await bookkeeping(hosted)


def test_every_subcommand_has_help() -> None:
    for command in ("plan", "run", "verify", "rollback", "backup", "cleanup", "restore"):
        result = chat_migrate(command, "--help")
        assert result.returncode == 0 and "--json" in result.stdout, command
