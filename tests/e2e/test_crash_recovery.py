"""A client killed with SIGKILL while its outbox holds messages loses none and doubles none."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from devstack.config import REPO_ROOT
from tests.conftest import StackHandle

pytestmark = pytest.mark.integration

COUNT = 40


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.sender_process", *args],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def outbox_rows(home: Path) -> int:
    with sqlite3.connect(home / "data" / "outbox.sqlite3") as db:
        return int(db.execute("select count(*) from outbox").fetchone()[0])


async def test_sigkill_with_a_full_outbox_then_restart(stack: StackHandle, tmp_path: Path) -> None:
    conn = await asyncpg.connect(stack.db_url)
    chat = uuid.uuid4()
    prefix = f"crash {chat.hex[:6]}"
    try:
        await conn.execute(
            "insert into public.chat_sessions (id, title, created_by) values ($1, 'crash test', $2)",
            chat,
            uuid.UUID("a11ce000-0000-4000-8000-000000000001"),
        )
        home = tmp_path / "client"
        args = [str(home), stack.api_url, stack.anon_key]
        gateway = stack.stack.gateway
        first = start([*args, "send", str(chat), str(COUNT), prefix])
        try:
            assert first.stdout is not None and first.stdin is not None
            assert first.stdout.readline().strip() == "signed-in"
            gateway.stop()  # the server goes away before anything is typed
            first.stdin.write("go\n")
            first.stdin.flush()
            assert first.stdout.readline().strip() == "queued"
            first.send_signal(signal.SIGKILL)
        finally:
            gateway.start()
            if first.poll() is None:
                first.kill()
            first.communicate(timeout=30)  # reap it and close its pipes
        assert outbox_rows(home) == COUNT  # every message typed is on disk
        assert await conn.fetchval("select count(*) from public.chat_messages where session_id = $1", chat) == 0

        second = start([*args, "drain"])
        out, err = second.communicate(timeout=180)
        assert second.returncode == 0, err
        assert out.strip().endswith("drained")
        rows = await conn.fetch(
            "select content, count(*) over (partition by id) as copies from public.chat_messages"
            " where session_id = $1 order by seq",
            chat,
        )
        assert [row["content"] for row in rows] == [f"{prefix} {n:03d}" for n in range(COUNT)]
        assert all(row["copies"] == 1 for row in rows)
        assert outbox_rows(home) == 0
    finally:
        await conn.close()
