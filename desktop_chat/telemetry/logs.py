"""Logging: a rotating file in the user log directory, redacted so it never holds tokens or keys.

Message text never reaches a log call in the first place (the data layer logs ids and counts only);
the redaction filter is the second line of defence for secrets that third-party libraries might log,
such as a JWT in a URL or an ``Authorization`` header in a debug line.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

LOG_FILE = "desktop-chat.log"

_SECRET_PATTERNS = [
    # JSON Web Tokens (three base64url parts): access tokens, the anon and service-role keys.
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)((?:apikey|api_key|access_token|refresh_token|password|requirepass)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
    ),
    re.compile(r"(redis(?:s)?://[^:/@\s]*:)[^@\s]+(@)"),
    re.compile(r"(?i)(requirepass\s+)\S+"),
]


def redact(text: str) -> str:
    """``text`` with anything that looks like a token, key or password replaced by ``[redacted]``."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 2:
            text = pattern.sub(lambda m: f"{m.group(1)}[redacted]{m.group(2)}", text)
        elif pattern.groups == 1:
            text = pattern.sub(lambda m: f"{m.group(1)}[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then redacts the whole text, traceback included.

    Redacting at the formatter, not in a filter, leaves the record itself alone, so other handlers (a
    test's log capture, say) still see the original exception information.
    """

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(log_dir: Path, level: str = "INFO", *, console: bool = True) -> Path:
    """Send the app's logs to a rotating file (5 × 2 MB) and, optionally, stderr. Returns the file."""
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = log_dir / LOG_FILE
    formatter = RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
    file_handler.setFormatter(formatter)
    teardown_logging()
    handlers: list[logging.Handler] = [file_handler]
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        handlers.append(stream)
    root = logging.getLogger()
    for handler in handlers:
        handler._desktop_chat = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter at INFO (every HTTP request) is noise, and may carry URLs with keys.
    for noisy in ("httpx", "httpcore", "hpack", "websockets", "realtime", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return path


def teardown_logging() -> None:
    """Remove and close the handlers ``setup_logging`` installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_desktop_chat", False):
            root.removeHandler(handler)
            handler.close()


def write_crash_report(
    log_dir: Path, kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> Path:
    """Write a redacted crash report next to the log and return its path."""
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = log_dir / f"crash-{stamp}.txt"
    from desktop_chat import __version__

    body = "".join(traceback.format_exception(kind, value, tb))
    path.write_text(f"desktop-chat {__version__} crashed at {stamp}\n\n{redact(body)}")
    path.chmod(0o600)
    return path
