"""open_cache: what the composition root gets for each configuration, and that leaving it stops it all."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from desktop_chat.cache.factory import open_cache, snapshot_dir
from desktop_chat.cache.keys import META_KEY_ID, chat_key
from desktop_chat.cache.redis_store import redis_client
from desktop_chat.cache.tiered import CacheStatus
from desktop_chat.config import Settings
from desktop_chat.secrets import FALLBACK_FILE
from desktop_chat.telemetry.metrics import CACHE_HITS, MetricsRegistry
from devstack.procs import free_port, pid_alive
from tests.builders import chat_details, new_chat_id, new_user
from tests.conftest import StackHandle

pytestmark = pytest.mark.integration

OWN_DB = 6  # the key-change test wipes a namespace: not the shared database 0


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(
        config_dir=tmp_path / "config", runtime_dir=tmp_path / "runtime", cache_dir=tmp_path / "cache", **values
    )  # type: ignore[arg-type]


async def test_without_a_redis_url_the_app_runs_its_own_redis(tmp_path: Path) -> None:
    metrics = MetricsRegistry()
    async with open_cache(settings(tmp_path), metrics) as cache:
        assert cache.status is CacheStatus.ONLINE
        user, session = new_user(), new_chat_id()
        await cache.set_chat(user, chat_details(session, user))
        hit = await cache.get_chat(user, session)
        assert hit is not None and hit.tier == "redis"
        assert metrics.value(CACHE_HITS, tier="redis", kind="chat") == 1
        (run_dir,) = (tmp_path / "runtime" / "redis").glob("run-*")
        pid = int((run_dir / "redis.pid").read_text())
        conf = dict(line.split(" ", 1) for line in (run_dir / "redis.conf").read_text().splitlines()[1:])
        admin = redis_client(unix_socket=conf["unixsocket"], password=conf["requirepass"])
        # Lists of up to cache_max_messages_per_chat messages stay in the compact encoding.
        assert (await admin.config_get("zset-max-listpack-entries")) == {"zset-max-listpack-entries": "201"}
        await admin.aclose()
        # No keyring under pytest: the key went to a user-only file.
        assert stat.S_IMODE((tmp_path / "config" / FALLBACK_FILE).stat().st_mode) == 0o600
    assert not pid_alive(pid) and not run_dir.exists()


async def test_a_configured_redis_is_used(tmp_path: Path, stack: StackHandle) -> None:
    async with open_cache(settings(tmp_path, redis_url=stack.redis_url), MetricsRegistry()) as cache:
        assert cache.status is CacheStatus.ONLINE
        assert not (tmp_path / "runtime" / "redis").exists()


async def test_a_new_key_wipes_what_the_old_key_wrote(tmp_path: Path, stack: StackHandle) -> None:
    url = stack.redis_url.rsplit("/", 1)[0] + f"/{OWN_DB}"
    user, session = new_user(), new_chat_id()
    async with open_cache(settings(tmp_path / "one", redis_url=url), MetricsRegistry()) as first:
        await first.set_chat(user, chat_details(session, user))
    raw = redis_client(url=url)
    assert await raw.exists(chat_key(user, session).redis_key) == 1
    # Another config dir is another install with another key: entries of the old key are wiped at once.
    try:
        async with open_cache(settings(tmp_path / "two", redis_url=url), MetricsRegistry()):
            assert await raw.exists(chat_key(user, session).redis_key) == 0
            assert await raw.get(META_KEY_ID) is not None
    finally:
        await raw.aclose()


async def test_an_unreachable_redis_starts_offline_without_raising(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with open_cache(settings(tmp_path, redis_url=url, cache_probe_backoff=600), MetricsRegistry()) as cache:
        assert cache.status is CacheStatus.OFFLINE and "cannot be reached" in cache.detail
        user, session = new_user(), new_chat_id()
        await cache.set_chat(user, chat_details(session, user))
        hit = await cache.get_chat(user, session)
        assert hit is not None and hit.tier == "memory"


async def test_without_a_redis_server_the_cache_runs_in_memory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    async with open_cache(settings(tmp_path), MetricsRegistry(), redis_search_path=str(tmp_path / "empty")) as cache:
        assert cache.status is CacheStatus.MEMORY_ONLY and "no redis-server" in cache.detail
        user, session = new_user(), new_chat_id()
        await cache.set_chat(user, chat_details(session, user))
        hit = await cache.get_chat(user, session)
        assert hit is not None and hit.tier == "memory"


async def test_a_disabled_cache_stores_nothing_and_leaves_the_keyring_alone(tmp_path: Path) -> None:
    async with open_cache(settings(tmp_path, cache_enabled=False), MetricsRegistry()) as cache:
        assert cache.status is CacheStatus.DISABLED
        user, session = new_user(), new_chat_id()
        await cache.set_chat(user, chat_details(session, user))
        assert await cache.get_chat(user, session) is None
        assert not (tmp_path / "config").exists()


async def test_an_unusable_runtime_dir_means_memory_only_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "runtime").write_text("a file where a directory should be")
    async with open_cache(settings(tmp_path), MetricsRegistry()) as cache:
        assert cache.status is CacheStatus.MEMORY_ONLY and "did not start" in cache.detail


async def wait_for_snapshot(path: Path, *, without: bytes, holding: bytes = b"") -> None:
    """Until the snapshot on disk lacks ``without`` and holds ``holding`` (a background save takes a moment)."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        data = await asyncio.to_thread(lambda: path.read_bytes() if path.exists() else None)
        if data is not None and without not in data and holding in data:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{path} still holds {without!r} (or lacks {holding!r})"
        await asyncio.sleep(0.05)


async def test_the_cache_is_there_again_after_a_restart_long_past_its_ttl(tmp_path: Path) -> None:
    """The offline-first start: entries written in one run are served by the next, stale but shown."""
    user, session = new_user(), new_chat_id()
    quick = {"cache_ttl_chat": 1}  # fresh for a second; kept for cache_keep_days after that
    async with open_cache(settings(tmp_path, **quick), MetricsRegistry()) as first:
        await first.set_chat(user, chat_details(session, user, title="kept across runs"))
        assert first.disk_bytes() == 0  # nothing saved yet: the snapshot is written at the latest on stop
    assert (snapshot_dir(settings(tmp_path)) / "cache.rdb").is_file()
    await asyncio.sleep(1.2)
    async with open_cache(settings(tmp_path, **quick), MetricsRegistry()) as again:
        hit = await again.get_chat(user, session)
        assert hit is not None and hit.value.chat.title == "kept across runs"
        assert hit.tier == "redis" and hit.fresh is False  # past its TTL: shown, and to be revalidated
        assert again.disk_bytes() > 0


async def test_signing_out_takes_the_users_entries_off_the_disk_too(tmp_path: Path) -> None:
    alice, bob, session = new_user(), new_user(), new_chat_id()
    async with open_cache(settings(tmp_path), MetricsRegistry()) as cache:
        await cache.set_chat(alice, chat_details(session, alice))
        await cache.set_chat(bob, chat_details(session, bob))
        await cache.purge_user(alice)
        # Written now, not at the next timed save or the shutdown's.
        await wait_for_snapshot(
            snapshot_dir(settings(tmp_path)) / "cache.rdb", without=str(alice).encode(), holding=str(bob).encode()
        )
    async with open_cache(settings(tmp_path), MetricsRegistry()) as again:
        assert await again.get_chat(alice, session) is None
        assert await again.get_chat(bob, session) is not None


async def test_clearing_the_cache_empties_the_snapshot(tmp_path: Path) -> None:
    user = new_user()
    async with open_cache(settings(tmp_path), MetricsRegistry()) as cache:
        for _ in range(20):
            await cache.set_chat(user, chat_details(new_chat_id(), user))
        await cache.wipe()
        await wait_for_snapshot(snapshot_dir(settings(tmp_path)) / "cache.rdb", without=str(user).encode())


async def test_each_server_has_a_snapshot_of_its_own(tmp_path: Path) -> None:
    """The same user id on two servers (two stacks with the same seed) is two people: never one's chats
    for the other's."""
    user, session = new_user(), new_chat_id()
    first = settings(tmp_path, supabase_url="http://127.0.0.1:54321")
    other = settings(tmp_path, supabase_url="https://abc.supabase.co")
    assert snapshot_dir(first) != snapshot_dir(other) and snapshot_dir(first).parent == snapshot_dir(other).parent
    assert snapshot_dir(first).name.startswith("127.0.0.1_54321-")
    async with open_cache(first, MetricsRegistry()) as cache:
        await cache.set_chat(user, chat_details(session, user))
    async with open_cache(other, MetricsRegistry()) as cache:
        assert await cache.get_chat(user, session) is None
    async with open_cache(first, MetricsRegistry()) as cache:
        assert await cache.get_chat(user, session) is not None
