"""The app's own redis-server: private socket, password, bounded, and never left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from desktop_chat.cache.managed import ManagedRedis, ManagedRedisError
from desktop_chat.cache.redis_store import redis_client
from devstack.procs import cmdline, pid_alive

pytestmark = pytest.mark.integration

DEADLINE = 15.0  # against hangs only


def spawn(argv: list[str], **options: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, **options)  # type: ignore[call-overload, no-any-return]


def wait_until_dead(pid: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still alive"
        time.sleep(0.02)


async def test_starts_on_a_private_socket_with_a_password_and_stops_without_a_trace(tmp_path: Path) -> None:
    managed = ManagedRedis(tmp_path / "runtime")
    endpoint = await managed.start()
    assert endpoint is not None and managed.run_dir is not None
    run_dir = managed.run_dir
    try:
        for directory in (tmp_path / "runtime" / "redis", run_dir):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_ISSOCK(endpoint.socket.stat().st_mode)
        assert stat.S_IMODE(endpoint.socket.stat().st_mode) == 0o700
        assert stat.S_IMODE((run_dir / "redis.conf").stat().st_mode) == 0o600
        assert "redis-server" in " ".join(cmdline(endpoint.pid))
        assert endpoint.password not in " ".join(cmdline(endpoint.pid))

        anonymous = redis_client(unix_socket=str(endpoint.socket))
        with pytest.raises((AuthenticationError, RedisConnectionError), match=r"(?i)authenticat"):
            await anonymous.ping()
        await anonymous.aclose()

        client = redis_client(unix_socket=str(endpoint.socket), password=endpoint.password)
        assert await client.ping()
        config = await client.config_get("*")
        assert config["port"] == "0"  # no TCP listener at all
        assert config["maxmemory"] == str(64 * 1024 * 1024)
        assert config["maxmemory-policy"] == "allkeys-lru"
        assert config["save"] == "" and config["appendonly"] == "no"
        assert config["zset-max-listpack-entries"] == "128"  # not asked to tune: Redis's default
        await client.aclose()
    finally:
        await managed.stop()
    wait_until_dead(endpoint.pid)
    assert not run_dir.exists() and not endpoint.socket.exists()
    await managed.stop()  # twice is harmless


async def test_two_instances_get_their_own_servers(tmp_path: Path) -> None:
    first, second = ManagedRedis(tmp_path), ManagedRedis(tmp_path)
    one, two = await first.start(), await second.start()
    try:
        assert one is not None and two is not None
        assert one.socket != two.socket and pid_alive(one.pid) and pid_alive(two.pid)
    finally:
        await first.stop()
        await second.stop()


async def test_no_redis_server_on_path_means_memory_only(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    managed = ManagedRedis(tmp_path / "runtime", search_path=str(tmp_path / "empty"))
    assert await managed.start() is None
    assert "no redis-server" in managed.detail
    assert not (tmp_path / "runtime").exists()


def fake_crashed_run(base: Path, name: str) -> Path:
    """A run directory as a crashed app leaves it: config, pidfile, nobody holding the lock."""
    run_dir = base / "redis" / f"run-{name}"
    run_dir.mkdir(parents=True, mode=0o700)
    (run_dir / "lock").touch()
    return run_dir


async def test_a_server_left_by_a_crashed_run_is_stopped_on_the_next_start(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    run_dir = fake_crashed_run(runtime, "crashed")
    socket = run_dir / "redis.sock"
    (run_dir / "redis.conf").write_text(
        f'port 0\nunixsocket {socket}\nsave ""\nappendonly no\ndir {run_dir}\nlogfile {run_dir / "redis.log"}\n'
    )
    # Started without a parent-death signal, so it outlived its app, as it would where setpriv is missing.
    orphan = spawn(["redis-server", str(run_dir / "redis.conf")], start_new_session=True)
    try:
        deadline = time.monotonic() + DEADLINE
        while not socket.exists():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        (run_dir / "redis.pid").write_text(f"{orphan.pid}\n")
        managed = ManagedRedis(runtime)
        assert await managed.start() is not None
        assert orphan.wait(timeout=DEADLINE) == 0  # SIGTERM: a clean exit
        assert not run_dir.exists()
        await managed.stop()
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


async def test_a_stale_pidfile_never_kills_a_process_that_is_not_its_redis(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    dead = fake_crashed_run(runtime, "dead")
    (dead / "redis.pid").write_text("999999999\n")  # long gone
    recycled = fake_crashed_run(runtime, "recycled")
    bystander = spawn(["sleep", "30"])
    (recycled / "redis.pid").write_text(f"{bystander.pid}\n")  # the pid now belongs to someone else
    garbled = fake_crashed_run(runtime, "garbled")
    (garbled / "redis.pid").write_text("not a pid")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep me")
    (garbled / "socket-dir").write_text(str(precious))  # not a directory we make: never followed
    managed = ManagedRedis(runtime)
    try:
        assert await managed.start() is not None
        assert not dead.exists() and not recycled.exists() and not garbled.exists()
        assert bystander.poll() is None
        assert (precious / "data").read_text() == "keep me"
    finally:
        await managed.stop()
        bystander.kill()
        bystander.wait()


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from desktop_chat.cache.managed import ManagedRedis

    async def main() -> None:
        endpoint = await ManagedRedis(Path(sys.argv[1])).start()
        print(endpoint.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
async def test_the_server_dies_with_a_killed_app_and_its_directory_is_reaped(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    app = spawn([sys.executable, "-c", CHILD, str(runtime)], stdout=subprocess.PIPE, cwd=Path(__file__).parents[3])
    try:
        assert app.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(app.stdout.readline), DEADLINE)
        redis_pid = int(line)
        assert pid_alive(redis_pid)
        os.kill(app.pid, signal.SIGKILL)
        app.wait()
        await asyncio.to_thread(wait_until_dead, redis_pid)  # the kernel's parent-death signal
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        if app.stdout is not None:
            app.stdout.close()
    (leftover,) = (runtime / "redis").glob("run-*")
    managed = ManagedRedis(runtime)
    assert await managed.start() is not None
    assert not leftover.exists()
    await managed.stop()


async def test_a_runtime_dir_too_deep_for_a_socket_path_gets_a_short_socket_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    managed = ManagedRedis(deep)
    endpoint = await managed.start()
    assert endpoint is not None
    try:
        assert len(str(endpoint.socket)) <= 100 and endpoint.socket.name == "redis.sock"
        assert stat.S_IMODE(endpoint.socket.parent.stat().st_mode) == 0o700
        client = redis_client(unix_socket=str(endpoint.socket), password=endpoint.password)
        assert await client.ping()
        await client.aclose()
    finally:
        await managed.stop()
    assert not endpoint.socket.parent.exists()


async def test_message_lists_are_tuned_to_the_compact_encoding_when_asked(tmp_path: Path) -> None:
    managed = ManagedRedis(tmp_path, list_entries=201)
    endpoint = await managed.start()
    assert endpoint is not None
    try:
        client = redis_client(unix_socket=str(endpoint.socket), password=endpoint.password)
        config = await client.config_get("zset-max-listpack-*")
        assert config == {"zset-max-listpack-entries": "201", "zset-max-listpack-value": "1024"}
        await client.aclose()
    finally:
        await managed.stop()


async def test_a_planted_symlink_in_the_runtime_dir_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "redis").symlink_to(elsewhere)
    managed = ManagedRedis(tmp_path / "runtime")
    with pytest.raises(ManagedRedisError, match="not a directory of this user"):
        await managed.start()
    assert list(elsewhere.iterdir()) == []


# --- persistence: the cache survives restarts -------------------------------------------------------------
async def write_and_stop(managed: ManagedRedis, **values: str) -> None:
    endpoint = await managed.start()
    assert endpoint is not None
    client = redis_client(unix_socket=str(endpoint.socket), password=endpoint.password)
    for name, value in values.items():
        await client.set(name, value)
    await client.aclose()
    await managed.stop()


async def read_keys(managed: ManagedRedis) -> dict[str, str]:
    endpoint = managed.endpoint
    assert endpoint is not None
    client = redis_client(unix_socket=str(endpoint.socket), password=endpoint.password)
    try:
        return {key.decode(): (await client.get(key) or b"").decode() for key in await client.keys("*")}
    finally:
        await client.aclose()


async def test_with_a_data_dir_what_it_held_is_there_again_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "cache" / "redis"
    await write_and_stop(ManagedRedis(tmp_path / "runtime", data_dir=data), chat="hello")
    snapshot = data / "cache.rdb"
    assert snapshot.is_file() and stat.S_IMODE(data.stat().st_mode) == 0o700
    again = ManagedRedis(tmp_path / "runtime", data_dir=data)
    assert await again.start() is not None
    try:
        assert again.persistent
        assert await read_keys(again) == {"chat": "hello"}
        assert again.disk_bytes() == snapshot.stat().st_size > 0
    finally:
        await again.stop()


async def test_without_a_data_dir_nothing_is_kept(tmp_path: Path) -> None:
    await write_and_stop(ManagedRedis(tmp_path / "runtime"), chat="hello")
    again = ManagedRedis(tmp_path / "runtime")
    assert await again.start() is not None
    try:
        assert not again.persistent and await read_keys(again) == {}
    finally:
        await again.stop()


async def test_a_second_instance_at_the_same_time_keeps_its_cache_in_memory(tmp_path: Path) -> None:
    data = tmp_path / "cache"
    first, second = ManagedRedis(tmp_path / "a", data_dir=data), ManagedRedis(tmp_path / "b", data_dir=data)
    assert await first.start() is not None and await second.start() is not None
    try:
        assert first.persistent and not second.persistent
    finally:
        await second.stop()
        await first.stop()


async def test_an_unreadable_snapshot_is_set_aside_and_the_server_starts_empty(tmp_path: Path) -> None:
    data = tmp_path / "cache"
    data.mkdir(mode=0o700)
    (data / "cache.rdb").write_bytes(b"REDIS0011 this is not a snapshot" * 10)
    managed = ManagedRedis(tmp_path / "runtime", data_dir=data)
    assert await managed.start() is not None
    try:
        assert managed.persistent and await read_keys(managed) == {}
        assert (data / "cache.unreadable").is_file()
    finally:
        await managed.stop()


PERSISTENT_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from desktop_chat.cache.managed import ManagedRedis
    from desktop_chat.cache.redis_store import redis_client

    async def main() -> None:
        endpoint = await ManagedRedis(Path(sys.argv[1]), data_dir=Path(sys.argv[2])).start()
        client = redis_client(unix_socket=str(endpoint.socket), password=endpoint.password)
        await client.set("written", "before the crash")
        print(endpoint.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
async def test_a_killed_app_leaves_its_cache_on_disk_for_the_next_start(tmp_path: Path) -> None:
    """SIGKILL reaches the app only; its Redis gets SIGTERM from the kernel and saves before it exits."""
    runtime, data = tmp_path / "runtime", tmp_path / "cache"
    app = spawn(
        [sys.executable, "-c", PERSISTENT_CHILD, str(runtime), str(data)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[3],
    )
    try:
        assert app.stdout is not None
        redis_pid = int(await asyncio.wait_for(asyncio.to_thread(app.stdout.readline), DEADLINE))
        os.kill(app.pid, signal.SIGKILL)
        app.wait()
        await asyncio.to_thread(wait_until_dead, redis_pid)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        if app.stdout is not None:
            app.stdout.close()
    again = ManagedRedis(runtime, data_dir=data)
    assert await again.start() is not None
    try:
        assert await read_keys(again) == {"written": "before the crash"}
    finally:
        await again.stop()


async def test_lists_loaded_from_the_snapshot_keep_the_compact_encoding(tmp_path: Path) -> None:
    data = tmp_path / "cache"
    first = ManagedRedis(tmp_path / "runtime", data_dir=data, list_entries=201)
    endpoint = await first.start()
    assert endpoint is not None
    client = redis_client(unix_socket=str(endpoint.socket), password=endpoint.password)
    await client.zadd("msgs", {f"message {n}": n for n in range(200)})
    assert await client.object("encoding", "msgs") == b"listpack"
    await client.aclose()
    await first.stop()
    again = ManagedRedis(tmp_path / "runtime", data_dir=data, list_entries=201)
    endpoint = await again.start()
    assert endpoint is not None
    try:
        client = redis_client(unix_socket=str(endpoint.socket), password=endpoint.password)
        assert await client.zcard("msgs") == 200
        assert await client.object("encoding", "msgs") == b"listpack"  # not converted to a skiplist on load
        await client.aclose()
    finally:
        await again.stop()
