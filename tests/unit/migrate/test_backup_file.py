"""The backup file's records and content checksum (chat_migrate/backup.py), without Redis."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from chat_migrate.backup import FORMAT, Checksum, KeyRecord, check_file
from chat_migrate.errors import BadInput, MigrateError

RECORDS = [
    KeyRecord(b"room:0:name", "string", -1, b"General"),
    KeyRecord(b"user:1", "hash", -1, [(b"username", b"alice"), (b"password", b"$2b$10$x")]),
    KeyRecord(b"user:1:rooms", "set", -1, [b"0", b"1:2"]),
    KeyRecord(b"room:0", "zset", -1, [(b'{"a": 1}', b"1"), (b"\xff", b"2")], part=0, last=False),
    KeyRecord(b"room:0", "zset", -1, [(b'{"b": 2}', b"3")], part=1, last=True),
]


def digest(records: list[KeyRecord]) -> str:
    checksum = Checksum()
    for record in records:
        checksum.add(
            KeyRecord(
                record.key,
                record.kind,
                record.ttl,
                list(record.value) if record.kind != "string" else record.value,
                record.part,
                record.last,
            )
        )
    return checksum.hexdigest()


def write(path: Path, records: list[KeyRecord], *, trailer: dict[str, object] | None) -> None:
    lines = [json.dumps({"format": FORMAT, "version": 1})] + [r.to_json() for r in records]
    if trailer is not None:
        lines.append(json.dumps(trailer))
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_checksum_ignores_key_order_hash_and_set_order_but_not_content() -> None:
    base = digest(RECORDS)
    shuffled = [RECORDS[2], RECORDS[0], RECORDS[3], RECORDS[4], RECORDS[1]]
    assert digest(shuffled) == base
    reordered = [
        *RECORDS[:1],
        KeyRecord(b"user:1", "hash", -1, [(b"password", b"$2b$10$x"), (b"username", b"alice")]),
        *RECORDS[2:],
    ]
    assert digest(reordered) == base
    changed = [KeyRecord(b"room:0:name", "string", -1, b"General!"), *RECORDS[1:]]
    assert digest(changed) != base
    renamed = [KeyRecord(b"room:1:name", "string", -1, b"General"), *RECORDS[1:]]
    assert digest(renamed) != base
    retimed = [KeyRecord(b"room:0:name", "string", 5000, b"General"), *RECORDS[1:]]
    assert digest(retimed) == base  # an expiry is not content


def test_records_survive_json_binary_safe() -> None:
    for record in RECORDS:
        again = KeyRecord.from_json(json.loads(record.to_json()))
        assert (again.key, again.kind, again.value, again.part, again.last) == (
            record.key,
            record.kind,
            record.value,
            record.part,
            record.last,
        )


def test_check_file_accepts_an_intact_file_and_refuses_others(tmp_path: Path) -> None:
    path = tmp_path / "b.gz"
    write(path, RECORDS, trailer={"end": True, "keys": 4, "checksum": digest(RECORDS)})
    check = check_file(path)
    assert check.keys == [b"room:0:name", b"user:1", b"user:1:rooms", b"room:0"]
    write(path, RECORDS, trailer=None)
    with pytest.raises(MigrateError, match="incomplete"):
        check_file(path)
    write(path, RECORDS, trailer={"end": True, "keys": 4, "checksum": "0" * 64})
    with pytest.raises(MigrateError, match="damaged"):
        check_file(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(MigrateError, match="cannot read"):
        check_file(path)
    path.write_bytes(gzip.compress(b'{"format": "something else"}\n'))
    with pytest.raises(BadInput, match="not a chat-migrate backup"):
        check_file(path)
    with pytest.raises(BadInput, match="no backup file"):
        check_file(tmp_path / "missing.gz")
