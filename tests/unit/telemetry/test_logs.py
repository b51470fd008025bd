"""Logs never contain tokens, keys or passwords, even when a library logs them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from desktop_chat.telemetry.logs import LOG_FILE, redact, setup_logging, teardown_logging, write_crash_report

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMiLCJyb2xlIjoiYXV0aGVudGljYXRlZCJ9.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        (f"GET /realtime/v1/websocket?apikey={JWT}&vsn=1.0.0", JWT),
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ('{"refresh_token": "rt-4c22aa91", "x": 1}', "rt-4c22aa91"),
        ("password=hunter2hunter2", "hunter2hunter2"),
        ("redis://:s3cretpass@127.0.0.1:6379/0", "s3cretpass"),
        ("requirepass Zm9vYmFy", "Zm9vYmFy"),
    ],
)
def test_secrets_are_redacted(raw: str, secret: str) -> None:
    cleaned = redact(raw)
    assert secret not in cleaned
    assert "[redacted]" in cleaned


def test_ordinary_text_is_left_alone() -> None:
    text = "chat 3f2c opened: 50 messages, cache hit in 0.4 ms"
    assert redact(text) == text


def test_the_log_file_is_redacted_including_tracebacks(tmp_path: Path) -> None:
    path = setup_logging(tmp_path / "logs", "INFO", console=False)
    log = logging.getLogger("desktop_chat.test")
    try:
        log.info("connecting with token %s", JWT)
        try:
            raise RuntimeError(f"failed with apikey={JWT}")
        except RuntimeError:
            log.exception("it broke")
    finally:
        teardown_logging()
    text = path.read_text()
    assert path.name == LOG_FILE
    assert JWT not in text
    assert "connecting with token [redacted]" in text
    assert "RuntimeError" in text


def test_crash_reports_are_redacted_and_private(tmp_path: Path) -> None:
    try:
        raise ValueError(f"Bearer {JWT}")
    except ValueError as error:
        path = write_crash_report(tmp_path, ValueError, error, error.__traceback__)
    assert JWT not in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
