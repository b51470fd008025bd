"""``backup``, ``restore`` and ``cleanup``: the legacy keys saved to a file, put back, or finally deleted.

The backup file is gzip-compressed JSON lines (binary-safe: keys and values are base64): a header, one
record per key (a big sorted set is split over several records), and a trailer with the number of keys
and a *content checksum*. The checksum is over what the keys hold, not over their encoding: per key,
SHA-256 of its type, name and value in a canonical order (hash fields and set members sorted, sorted-set
members in Redis's order with the scores as Redis prints them), then SHA-256 over the sorted per-key
digests. The same function runs over Redis and over a file, so "the backup matches Redis" is a
comparison of two digests, and Redis versions or encodings do not matter. The file is written to a
temporary name, flushed to disk, made readable by its owner only (it holds password hashes) and renamed.

``cleanup`` deletes the legacy keys only when the backup file is intact, its checksum equals what is in
Redis now (same keys, same content), the run is finished and ``verify`` passes. ``restore`` writes a
backup's keys back (refusing to overwrite existing keys unless ``--replace``) and checks the result
against the file's checksum.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat_migrate import __version__
from chat_migrate.db import SCHEMA, connect, take_lock
from chat_migrate.errors import BadInput, MigrateError
from chat_migrate.progress import Reporter
from chat_migrate.source import LegacySource, redact

FORMAT = "chat-migrate-backup"
VERSION = 1
ZSET_PART = 10_000


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _raw(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _item(digest: Any, raw: bytes) -> None:
    digest.update(len(raw).to_bytes(8, "big"))
    digest.update(raw)


@dataclass
class KeyRecord:
    """One key (or one part of a big sorted set) as stored in the file."""

    key: bytes
    kind: str
    ttl: int
    value: Any  # bytes | list[tuple[bytes, bytes]] | list[bytes]
    part: int = 0
    last: bool = True

    def to_json(self) -> str:
        if self.kind == "string":
            value: Any = _b64(self.value)
        elif self.kind in ("hash", "zset"):
            value = [[_b64(a), _b64(b)] for a, b in self.value]
        else:
            value = [_b64(member) for member in self.value]
        record = {
            "k": _b64(self.key),
            "t": self.kind,
            "ttl": self.ttl,
            "v": value,
            "part": self.part,
            "last": self.last,
        }
        return json.dumps(record, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        kind = data["t"]
        if kind == "string":
            value: Any = _raw(data["v"])
        elif kind in ("hash", "zset"):
            value = [(_raw(a), _raw(b)) for a, b in data["v"]]
        elif kind in ("set", "list"):
            value = [_raw(member) for member in data["v"]]
        else:
            raise ValueError(f"unknown key type {kind!r}")
        return cls(_raw(data["k"]), kind, int(data["ttl"]), value, int(data["part"]), bool(data["last"]))


@dataclass
class Checksum:
    """The content checksum, fed key by key (parts of one key in order)."""

    digests: dict[bytes, bytes] = field(default_factory=dict)
    _open: dict[bytes, Any] = field(default_factory=dict)

    def add(self, record: KeyRecord) -> None:
        digest = self._open.get(record.key)
        if digest is None:
            digest = hashlib.sha256()
            _item(digest, record.kind.encode())
            _item(digest, record.key)
            self._open[record.key] = digest
        if record.kind == "string":
            _item(digest, record.value)
        elif record.kind == "hash":
            record.value = sorted(record.value)
            for name, value in record.value:
                _item(digest, name)
                _item(digest, value)
        elif record.kind == "set":
            record.value = sorted(record.value)
            for member in record.value:
                _item(digest, member)
        elif record.kind == "zset":
            for member, score in record.value:
                _item(digest, member)
                _item(digest, score)
        else:
            for member in record.value:
                _item(digest, member)
        if record.last:
            self.digests[record.key] = self._open.pop(record.key).digest()

    def hexdigest(self) -> str:
        total = hashlib.sha256()
        for key in sorted(self.digests):
            _item(total, key)
            total.update(self.digests[key])
        return total.hexdigest()


async def read_keys(source: LegacySource, keys: list[bytes]) -> AsyncIterator[KeyRecord]:
    """The keys' content as records, in key order; big sorted sets in parts of :data:`ZSET_PART`."""
    for start in range(0, len(keys), 500):
        group = keys[start : start + 500]
        meta = await source.pipeline([cmd for key in group for cmd in (("type", key), ("pttl", key))])
        kinds = [(k.decode() if isinstance(k, bytes) else str(k)) for k in meta[0::2]]
        ttls = [int(t) for t in meta[1::2]]
        simple = [
            (key, kind) for key, kind in zip(group, kinds, strict=True) if kind in ("string", "hash", "set", "list")
        ]
        getters = {"string": "get", "hash": "hgetall", "set": "smembers"}
        values = await source.pipeline(
            (getters[kind], key) if kind != "list" else ("lrange", key, 0, -1) for key, kind in simple
        )
        simple_values = dict(zip([key for key, _ in simple], values, strict=True))
        for key, kind, ttl in zip(group, kinds, ttls, strict=True):
            if kind == "none":
                continue  # deleted meanwhile
            if kind == "zset":
                size = int(await source.call(source.redis.zcard(key)))
                for part, first in enumerate(range(0, max(size, 1), ZSET_PART)):
                    flat = await source.call(source.redis.zrange(key, first, first + ZSET_PART - 1, False, True))
                    pairs = list(zip(flat[0::2], flat[1::2], strict=True))
                    yield KeyRecord(key, kind, ttl, pairs, part, first + ZSET_PART >= size)
                continue
            value = simple_values.get(key)
            if kind == "string":
                yield KeyRecord(key, kind, ttl, value or b"")
            elif kind == "hash":
                yield KeyRecord(key, kind, ttl, list((value or {}).items()))
            elif kind in ("set", "list"):
                yield KeyRecord(key, kind, ttl, list(value or []))
            else:
                raise MigrateError(f"key {key!r} is a {kind}, which backup does not handle")


def read_file(path: Path) -> Iterator[KeyRecord | dict[str, Any]]:
    """The file's header (a dict), its records, and its trailer (a dict), in order."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    data = json.loads(line)
                    if number == 1:
                        if data.get("format") != FORMAT:
                            raise BadInput(f"{path} is not a chat-migrate backup")
                        yield data
                    elif data.get("end"):
                        yield data
                    else:
                        yield KeyRecord.from_json(data)
                except (ValueError, KeyError, TypeError) as error:
                    raise MigrateError(f"{path} is damaged at line {number}: {error}") from None
    except FileNotFoundError:
        raise BadInput(f"there is no backup file {path}") from None
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise MigrateError(f"cannot read backup {path}: {error}") from None


@dataclass
class FileCheck:
    keys: list[bytes]
    checksum: str
    header: dict[str, Any]


def check_file(path: Path) -> FileCheck:
    """Read the whole file; its keys and checksum, or :class:`MigrateError` if it is damaged."""
    checksum = Checksum()
    header: dict[str, Any] = {}
    trailer: dict[str, Any] | None = None
    keys: list[bytes] = []
    for item in read_file(path):
        if isinstance(item, dict):
            if item.get("end"):
                trailer = item
            else:
                header = item
            continue
        if item.part == 0:
            keys.append(item.key)
        checksum.add(item)
    if trailer is None:
        raise MigrateError(f"{path} is incomplete (no trailer): the backup did not finish")
    actual = checksum.hexdigest()
    if actual != trailer.get("checksum") or len(keys) != trailer.get("keys"):
        raise MigrateError(f"{path} is damaged: its content does not match its own checksum")
    return FileCheck(keys, actual, header)


async def redis_checksum(source: LegacySource, keys: list[bytes]) -> str:
    checksum = Checksum()
    async for record in read_keys(source, keys):
        checksum.add(record)
    return checksum.hexdigest()


def _check_target(out: Path) -> None:
    if out.exists():
        raise BadInput(f"{out} exists; choose another file (a backup is never overwritten)")
    if not out.parent.is_dir():
        raise BadInput(f"there is no directory {out.parent}")


def _size(path: Path) -> int:
    return path.stat().st_size


async def backup(redis_url: str, out: Path, reporter: Reporter) -> dict[str, Any]:
    _check_target(out)
    source = await LegacySource.open(redis_url)
    temp = out.with_name(out.name + ".partial")
    try:
        keys = await source.layout_keys()
        checksum = Checksum()
        written = 0
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3) as handle:
            header = {
                "format": FORMAT,
                "version": VERSION,
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "source": redact(redis_url),
                "tool": __version__,
            }
            handle.write((json.dumps(header) + "\n").encode())
            with reporter.track("backup", len(keys), "keys") as tracker:
                async for record in read_keys(source, keys):
                    checksum.add(record)
                    handle.write((record.to_json() + "\n").encode())
                    if record.last:
                        written += 1
                        tracker.advance(1)
            digest = checksum.hexdigest()
            handle.write((json.dumps({"end": True, "keys": written, "checksum": digest}) + "\n").encode())
            handle.flush()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        await source.close()
    return {
        "command": "backup",
        "file": str(out),
        "keys": written,
        "bytes": _size(out),
        "checksum": digest,
        "source": redact(redis_url),
    }


async def restore(redis_url: str, path: Path, replace: bool, reporter: Reporter) -> dict[str, Any]:
    check = check_file(path)
    source = await LegacySource.open(redis_url)
    try:
        existing = await source.pipeline(("exists", key) for key in check.keys)
        present = [key for key, flag in zip(check.keys, existing, strict=True) if int(flag)]
        if present and not replace:
            raise MigrateError(
                f"Redis already has {len(present)} of the backup's keys (e.g. {present[0].decode(errors='replace')});"
                " restore into a Redis without them, or pass --replace"
            )
        with reporter.track("restore", len(check.keys), "keys") as tracker:
            pipe = source.redis.pipeline(transaction=False)
            pending = 0
            for item in read_file(path):
                if isinstance(item, dict):
                    continue
                if item.part == 0:
                    pipe.delete(item.key)
                _write(pipe, item)
                pending += 1
                if item.last:
                    if item.ttl > 0:
                        pipe.pexpire(item.key, item.ttl)
                    tracker.advance(1)
                if pending >= 200:
                    await source.call(pipe.execute())
                    pending = 0
            if pending:
                await source.call(pipe.execute())
        actual = await redis_checksum(source, check.keys)
    finally:
        await source.close()
    if actual != check.checksum:
        raise MigrateError("restored, but what Redis holds now does not match the backup's checksum")
    return {
        "command": "restore",
        "file": str(path),
        "keys": len(check.keys),
        "checksum": actual,
        "replaced": len(present),
        "source": redact(redis_url),
    }


def _write(pipe: Any, item: KeyRecord) -> None:
    if item.kind == "string":
        pipe.set(item.key, item.value)
    elif item.kind == "hash" and item.value:
        pipe.hset(item.key, mapping=dict(item.value))
    elif item.kind == "set" and item.value:
        pipe.sadd(item.key, *item.value)
    elif item.kind == "list" and item.value:
        pipe.rpush(item.key, *item.value)
    elif item.kind == "zset" and item.value:
        pipe.zadd(item.key, {member: float(score) for member, score in item.value})


async def cleanup(redis_url: str, db_url: str, run_id: int, path: Path, reporter: Reporter) -> dict[str, Any]:
    from chat_migrate.verify import verify

    reporter.log(f"checking the backup {path}")
    check = check_file(path)
    conn = await connect(db_url)
    try:
        status = (
            await conn.fetchval(
                f"select status from {SCHEMA}.runs where id = $1",
                run_id,
            )
            if await conn.fetchval("select exists (select from pg_namespace where nspname = $1)", SCHEMA)
            else None
        )
        if status is None:
            raise MigrateError(f"there is no run {run_id} in this database")
        if status != "done":
            raise MigrateError(f"run {run_id} is {status}, not done; finish it (chat-migrate run) before cleaning up")
        await take_lock(conn)
        source = await LegacySource.open(redis_url)
        try:
            keys = await source.layout_keys()
            if sorted(keys) != sorted(check.keys):
                extra = len(set(keys) - set(check.keys))
                gone = len(set(check.keys) - set(keys))
                raise MigrateError(
                    f"Redis has changed since the backup ({extra} keys not in it, {gone} of its keys gone);"
                    " take a new backup"
                )
            reporter.log("comparing Redis with the backup")
            if await redis_checksum(source, keys) != check.checksum:
                raise MigrateError("Redis has changed since the backup (same keys, other content); take a new backup")
        finally:
            await source.close()
        reporter.log("verifying the migration")
        summary, ok = await verify(redis_url, db_url, None, 5, reporter)
        if not ok:
            raise MigrateError(
                f"verify found {summary['differences']} differences, so the legacy keys stay: "
                + "; ".join(summary["first_differences"][:3])
            )
        source = await LegacySource.open(redis_url)
        try:
            deleted = await source.delete_keys(keys)
        finally:
            await source.close()
        await conn.execute(f"update {SCHEMA}.runs set cleaned_up_at = now() where id = $1", run_id)
    finally:
        await conn.close()
    return {
        "command": "cleanup",
        "run": run_id,
        "backup": str(path),
        "checksum": check.checksum,
        "deleted_keys": deleted,
        "source": redact(redis_url),
    }
