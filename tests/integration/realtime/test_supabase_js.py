"""Realtime for JavaScript: the official ``@supabase/supabase-js`` (V2 serializer) against the gateway.

The JavaScript side is ``tests/js/realtime.test.mjs``, run with Node's own test runner; this test starts
it against the session's stack with three users of its own (tokens minted with the stack's secret) and
fails with Node's report when any of its tests fails. The packages come from ``tests/js/package-lock.json``
(``make test`` runs ``npm ci`` there; this test does too when they are missing). Skipped only when Node is
not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import StackHandle
from tests.integration.realtime.conftest import Db, Realtime

JS_DIR = Path(__file__).resolve().parents[2] / "js"
NODE = shutil.which("node")
NPM = shutil.which("npm")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(NODE is None, reason="Node.js (20 or later) is not installed: the supabase-js tests need it"),
]


def installed() -> bool:
    return (JS_DIR / "node_modules" / "@supabase" / "supabase-js" / "package.json").exists()


def install() -> None:
    """``npm ci`` from the committed lockfile, if ``make test`` has not done it already."""
    if installed():
        return
    assert NPM is not None, "npm is missing next to node; install it to run the supabase-js tests"
    result = subprocess.run(
        [NPM, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"npm ci failed in {JS_DIR}:\n{result.stdout}\n{result.stderr}"


async def test_supabase_js_realtime(stack: StackHandle, db: Db, rt: Realtime) -> None:
    await asyncio.to_thread(install)
    names = ("alice", "bob", "carol")
    users = {name: await db.new_user(name) for name in names}
    alice, bob, carol = (users[name] for name in names)
    chat = await db.new_chat(alice, bob)
    carol_chat = await db.new_chat(alice, carol)
    config = {
        "apiUrl": stack.api_url,
        "anonKey": stack.anon_key,
        "chat": str(chat),
        "carolChat": str(carol_chat),
        **{name: {"id": str(user), "token": rt.token(user)} for name, user in users.items()},
    }
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        "--test",
        "--test-reporter=tap",
        str(JS_DIR / "realtime.test.mjs"),
        cwd=JS_DIR,
        env={**os.environ, "DEVSTACK_JS_CONFIG": json.dumps(config), "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
    summary = [line for line in report.splitlines() if line.startswith(("# pass", "# fail"))]
    assert summary == ["# pass 7", "# fail 0"], report
