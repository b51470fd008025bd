"""backup → cleanup (only after verify passes and the backup matches Redis) → restore, and verify's eye."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import asyncpg
import pytest

from chat_migrate import ids
from chat_migrate.backup import backup, cleanup, restore
from chat_migrate.errors import MigrateError
from chat_migrate.migrate import Options, run
from chat_migrate.progress import Reporter
from chat_migrate.verify import verify
from tests.integration.migrate.conftest import Legacy, emails_csv
from tests.legacy.dirt import DOMAIN, DirtyStore
from tests.legacy.hosted import HostedDb

pytestmark = pytest.mark.integration


def snapshot(legacy: Legacy) -> dict[bytes, object]:
    """Every key's type, value and expiry, for comparing the whole store before and after."""
    client = legacy.client
    out: dict[bytes, object] = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key).decode()
        if kind == "string":
            value: object = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "set":
            value = client.smembers(key)
        else:
            value = client.zrange(key, 0, -1, withscores=True)
        out[key] = (kind, value, client.pttl(key))
    return out


async def migrate(legacy: Legacy, hosted: HostedDb, tmp_path: Path, quiet: Reporter) -> int:
    csv = emails_csv(tmp_path, {"dave": f"dave.two@{DOMAIN}"})
    summary = await run(Options(legacy.url, hosted.url, email_domain=DOMAIN, emails_file=csv), quiet)
    return int(summary["run"])


async def test_verify_lists_differences_and_cleanup_then_refuses(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    run_id = await migrate(legacy, hosted, tmp_path, quiet)
    # Someone removes a migrated message behind everyone's back, and the legacy server took one more.
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        await conn.execute(
            "delete from public.chat_messages where session_id = $1 and seq = 2", ids.chat_id(dirty.rooms["alice_bob"])
        )
    finally:
        await conn.close()
    legacy.writer.send("5", dirty.users["carol"], "posted after the migration", 1_800_000_000)
    summary, ok = await verify(legacy.url, hosted.url, None, 20, quiet)
    assert not ok and summary["differences"] == 2
    assert any(
        f"room {dirty.rooms['alice_bob']}: 2 messages in Redis, 1 migrated" in d for d in summary["first_differences"]
    )
    assert any("room 5: 3 messages in Redis, 2 migrated" in d for d in summary["first_differences"])

    file = tmp_path / "legacy.backup.gz"
    await backup(legacy.url, file, quiet)
    before = snapshot(legacy)
    with pytest.raises(MigrateError, match="verify found 2 differences"):
        await cleanup(legacy.url, hosted.url, run_id, file, quiet)
    assert snapshot(legacy) == before  # not a key deleted


async def test_verify_names_the_first_differing_message(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    await migrate(legacy, hosted, tmp_path, quiet)
    conn = await asyncpg.connect(hosted.admin_url)
    try:  # a text changed without the edit trigger (so not "edited by its sender"): corruption
        async with conn.transaction():
            await conn.execute("alter table public.chat_messages disable trigger chat_messages_revise")
            await conn.execute(
                "update public.chat_messages set content = 'tampered' where session_id = $1 and seq = 3",
                ids.chat_id("0"),
            )
            await conn.execute("alter table public.chat_messages enable trigger chat_messages_revise")
    finally:
        await conn.close()
    summary, ok = await verify(legacy.url, hosted.url, None, 20, quiet)
    assert not ok
    assert summary["first_differences"] == [
        "room 0: checksums differ; first at message 3: Redis 'fractional date', Supabase 'tampered'"
    ]


async def test_an_edit_by_its_sender_is_not_a_difference(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    await migrate(legacy, hosted, tmp_path, quiet)
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        await conn.execute(
            "update public.chat_messages set content = 'hi alice (edited)' where session_id = $1 and seq = 2",
            ids.chat_id(dirty.rooms["alice_bob"]),
        )
    finally:
        await conn.close()
    summary, ok = await verify(legacy.url, hosted.url, None, 20, quiet)
    assert ok, summary["first_differences"]
    assert summary["messages"]["changed_by_people_since"] == 1


async def test_backup_cleanup_restore_round_trip(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    run_id = await migrate(legacy, hosted, tmp_path, quiet)
    original = snapshot(legacy)
    file = tmp_path / "legacy.backup.gz"
    made = await backup(legacy.url, file, quiet)
    assert made["keys"] == len(original) and file.stat().st_mode & 0o077 == 0

    # A backup that no longer matches Redis is refused...
    legacy.client.set("room:0:name", "General (renamed)")
    with pytest.raises(MigrateError, match="Redis has changed since the backup"):
        await cleanup(legacy.url, hosted.url, run_id, file, quiet)
    legacy.client.set("room:0:name", "General")
    # ... and so is a damaged one.
    damaged = tmp_path / "damaged.gz"
    general, other = base64.b64encode(b"General"), base64.b64encode(b"Genera1")
    text = gzip.decompress(file.read_bytes())
    assert general in text
    text = text.replace(general, other)
    damaged.write_bytes(gzip.compress(text))
    with pytest.raises(MigrateError, match="damaged"):
        await cleanup(legacy.url, hosted.url, run_id, damaged, quiet)
    assert snapshot(legacy) == original

    done = await cleanup(legacy.url, hosted.url, run_id, file, quiet)
    assert done["deleted_keys"] == len(original)
    assert legacy.client.dbsize() == 0

    restored = await restore(legacy.url, file, False, quiet)
    assert restored["checksum"] == made["checksum"]
    assert snapshot(legacy) == original
    with pytest.raises(MigrateError, match="already has"):
        await restore(legacy.url, file, False, quiet)
    summary, ok = await verify(legacy.url, hosted.url, None, 20, quiet)
    assert ok, summary["first_differences"]
