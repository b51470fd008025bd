"""``python -m devstack``: up/down/status/reset, recovery from crashes, and clear failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.config import REPO_ROOT, StackConfig
from devstack.procs import free_port, pid_alive, read_pid
from devstack.stack import Stack

pytestmark = pytest.mark.integration


class Cli:
    """Runs ``python -m devstack`` against one state directory and set of ports."""

    def __init__(self, state_dir: Path, supabase_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self.env = dict(os.environ)
        self.env.update(
            {
                "DEVSTACK_DB_PORT": str(free_port()),
                "DEVSTACK_REDIS_PORT": str(free_port()),
                "DEVSTACK_API_PORT": str(free_port()),
            }
        )
        if supabase_dir is not None:
            self.env["DEVSTACK_SUPABASE_DIR"] = str(supabase_dir)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devstack", "--state-dir", str(self.state_dir), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=REPO_ROOT,
            timeout=180,
            check=False,
        )

    def destroy(self) -> None:
        """Stop the stack and delete its cluster, wherever it lives, and its state directory."""
        Stack(StackConfig(state_dir=self.state_dir.resolve())).destroy()

    def port(self, name: str) -> int:
        return int(self.env[f"DEVSTACK_{name}_PORT"])


@pytest.fixture
def cli() -> Iterator[Cli]:
    state_dir = Path(tempfile.mkdtemp(prefix="dc-test-cli-"))
    runner = Cli(state_dir)
    try:
        yield runner
    finally:
        runner.destroy()


def test_up_is_idempotent_and_down_stops_everything(cli: Cli) -> None:
    first = cli("up", "--json", "--ephemeral")
    assert first.returncode == 0, first.stderr
    info = json.loads(first.stdout)
    for key in ("api_url", "db_url", "redis_url", "anon_key", "service_role_key", "jwt_secret"):
        assert info[key]
    assert info["applied_migrations"]
    assert info["seeded"] is True

    second = cli("up", "--json", "--ephemeral")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["applied_migrations"] == []
    assert again["seeded"] is False

    status = cli("status", "--json")
    assert status.returncode == 0
    services = json.loads(status.stdout)["services"]
    assert all(service["running"] for service in services.values())

    down = cli("down")
    assert down.returncode == 0
    assert "postgres" in down.stdout and "redis" in down.stdout and "gateway" in down.stdout
    assert cli("status").returncode == 3
    assert "nothing was running" in cli("down").stdout


def test_up_recovers_from_a_crashed_previous_run(cli: Cli) -> None:
    assert cli("up", "--no-gateway", "--ephemeral").returncode == 0
    redis_pid = read_pid(cli.state_dir / "redis" / "redis.pid")
    assert redis_pid is not None
    os.kill(redis_pid, signal.SIGKILL)
    # A stale pid file pointing at a dead process, as after a crash.
    (cli.state_dir / "redis" / "redis.pid").write_text(f"{redis_pid}\n")

    result = cli("up", "--no-gateway", "--ephemeral")
    assert result.returncode == 0, result.stderr
    new_pid = read_pid(cli.state_dir / "redis" / "redis.pid")
    assert new_pid is not None and new_pid != redis_pid and pid_alive(new_pid)


def test_a_port_taken_by_another_program_is_named(cli: Cli) -> None:
    port = cli.port("DB")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = cli("up", "--no-gateway", "--ephemeral")
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert "another program" in result.stderr


def test_a_broken_migration_names_the_file_and_changes_nothing(tmp_path: Path) -> None:
    project = tmp_path / "supabase"
    shutil.copytree(REPO_ROOT / "supabase", project)
    (project / "migrations" / "20990101000000_good.sql").write_text("create table public.should_not_exist (id int);\n")
    (project / "migrations" / "20990101000001_broken.sql").write_text(
        "create table public.also_not (id int);\nselect * from no_such_table;\n"
    )
    state_dir = Path(tempfile.mkdtemp(prefix="dc-test-broken-"))
    runner = Cli(state_dir, supabase_dir=project)
    try:
        result = runner("up", "--no-gateway", "--ephemeral")
        assert result.returncode == 1
        assert "20990101000001_broken.sql:2" in result.stderr
        assert 'relation "no_such_table" does not exist' in result.stderr
        # Fixing the file lets `up` proceed; the earlier failure left no trace of either new migration.
        (project / "migrations" / "20990101000001_broken.sql").write_text("select 1;\n")
        fixed = runner("up", "--no-gateway", "--ephemeral", "--json")
        assert fixed.returncode == 0, fixed.stderr
        applied = json.loads(fixed.stdout)["applied_migrations"]
        assert applied[-2:] == ["20990101000000_good.sql", "20990101000001_broken.sql"]
    finally:
        runner.destroy()


def test_a_misnamed_migration_is_an_error(tmp_path: Path) -> None:
    project = tmp_path / "supabase"
    (project / "migrations").mkdir(parents=True)
    (project / "migrations" / "add_things.sql").write_text("select 1;\n")
    state_dir = Path(tempfile.mkdtemp(prefix="dc-test-misnamed-"))
    runner = Cli(state_dir, supabase_dir=project)
    try:
        result = runner("up", "--no-gateway", "--ephemeral")
        assert result.returncode == 1
        assert "add_things.sql" in result.stderr
        assert "<14-digit timestamp>_<name>.sql" in result.stderr
        # The failed `up` stopped what it had started.
        assert runner("status").returncode == 3
    finally:
        runner.destroy()
