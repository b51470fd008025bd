"""Connection URLs: shown without secrets, and a malformed one is a clear one-line error, not a traceback."""

from __future__ import annotations

import pytest

from chat_migrate.db import connect
from chat_migrate.errors import BadInput
from chat_migrate.source import LegacySource, redact


def test_redact_drops_user_and_password() -> None:
    assert redact("redis://:secret@host:6379/0") == "redis://host:6379/0"
    assert redact("postgresql://postgres:pw@db.example.co:5432/postgres?sslmode=require") == (
        "postgresql://db.example.co:5432/postgres"
    )


def test_redact_survives_a_malformed_url() -> None:
    assert "secret" not in redact("redis://:secret@127.0.0.1:port/0")


async def test_a_malformed_redis_url_is_bad_input() -> None:
    with pytest.raises(BadInput, match=r"--redis is not a usable URL"):
        await LegacySource.open("redis://:secret@127.0.0.1:1:2/0")


async def test_a_malformed_database_url_is_bad_input() -> None:
    with pytest.raises(BadInput, match=r"--db-url is not a usable URL"):
        await connect("postgresql://postgres:secret@127.0.0.1:notaport/postgres")
