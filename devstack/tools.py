"""Finding the server programs devstack drives, with an install hint when one is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

from devstack.procs import DevstackError

_PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/pgsql/bin")]


def pg_tool(name: str) -> str:
    """Absolute path of a PostgreSQL 15 server program such as ``initdb`` or ``pg_ctl``."""
    for directory in _PG_BIN_DIRS:
        candidate = directory / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise DevstackError(
        f"PostgreSQL 15 server program '{name}' not found; install it with: "
        "apt-get install postgresql-15 postgresql-15-wal2json (or run `make test`, which does it as root)"
    )


def redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    raise DevstackError("redis-server not found; install it with: apt-get install redis-server")
