"""Where a stack lives and which ports it uses; the Supabase CLI's published local defaults."""

from __future__ import annotations

import hashlib
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# The Supabase CLI's published defaults for local development (`supabase status`). They are public on
# purpose: a local stack is not a secret, and using the same values lets one app configuration talk to
# `supabase start` and to devstack alike.
JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9"
    ".CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0"
    ".EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)
DB_USER = "postgres"
DB_PASSWORD = "postgres"
DB_NAME = "postgres"

# GoTrue's per-IP limits as the Supabase CLI writes them in ``[auth.rate_limit]`` (its defaults when absent):
# requests per 5 minutes for sign-in/refresh (``token_refresh``) and for sign-up and user updates
# (``sign_in_sign_ups``), each with GoTrue's burst of 30.
DEFAULT_RATE_LIMITS: dict[str, float] = {"token_refresh": 150.0, "sign_in_sign_ups": 30.0}
# Throwaway stacks serve a test suite that signs in hundreds of times from 127.0.0.1.
RAISED_RATE_LIMITS: dict[str, float] = {"token_refresh": 1e9, "sign_in_sign_ups": 1e9}

DEFAULT_API_PORT = 54321
DEFAULT_DB_PORT = 54322
DEFAULT_REDIS_PORT = 54379


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a port number") from None
    if not 0 < value < 65536:
        raise SystemExit(f"{name}={value} is outside 1..65535")
    return value


@dataclass(frozen=True)
class StackConfig:
    """Everything that identifies one stack: its state directory and its loopback ports.

    Attributes:
        state_dir: Holds the database cluster, Redis data, logs, pid files and ``stack.json``.
        supabase_dir: The Supabase CLI project folder with ``migrations/`` and ``seed.sql``.
        ephemeral: Trade durability for speed (no fsync); for throwaway test stacks.
        access_token_ttl: Lifetime of access tokens issued by the gateway, in seconds.
        gateway: Whether ``up`` starts the API gateway.
        auth_rate_limits: Overrides of ``[auth.rate_limit]`` in ``config.toml`` (throwaway stacks raise them).
    """

    state_dir: Path
    supabase_dir: Path = REPO_ROOT / "supabase"
    host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    db_port: int = DEFAULT_DB_PORT
    redis_port: int = DEFAULT_REDIS_PORT
    ephemeral: bool = False
    access_token_ttl: int = 3600
    gateway: bool = True
    jwt_secret: str = field(default=JWT_SECRET, repr=False)
    auth_rate_limits: Mapping[str, float] | None = None

    @property
    def project(self) -> ProjectSettings:
        """What ``supabase/config.toml`` says, with this stack's overrides applied."""
        settings = ProjectSettings.load(self.supabase_dir)
        if self.auth_rate_limits is not None:
            settings = ProjectSettings(
                max_rows=settings.max_rows,
                refresh_token_reuse_interval=settings.refresh_token_reuse_interval,
                rate_limits={**settings.rate_limits, **self.auth_rate_limits},
            )
        return settings

    @classmethod
    def from_env(cls, state_dir: Path | None = None, **overrides: object) -> StackConfig:
        """Build a config from ``DEVSTACK_*`` environment variables, then explicit overrides."""
        env_dir = os.environ.get("DEVSTACK_STATE_DIR")
        chosen = state_dir or (Path(env_dir) if env_dir else REPO_ROOT / ".devstack")
        values: dict[str, object] = {
            "state_dir": chosen.resolve(),
            "api_port": _env_int("DEVSTACK_API_PORT", DEFAULT_API_PORT),
            "db_port": _env_int("DEVSTACK_DB_PORT", DEFAULT_DB_PORT),
            "redis_port": _env_int("DEVSTACK_REDIS_PORT", DEFAULT_REDIS_PORT),
            "access_token_ttl": _env_int("DEVSTACK_JWT_EXPIRY", 3600),
        }
        supabase_dir = os.environ.get("DEVSTACK_SUPABASE_DIR")
        if supabase_dir:
            values["supabase_dir"] = Path(supabase_dir).resolve()
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    # --- derived locations -------------------------------------------------------------------------
    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pg_dir(self) -> Path:
        """Directory holding the cluster (``data/``) and the server's unix socket.

        PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user, which
        must be able to reach this directory. When the state directory sits below a directory that
        user cannot enter (such as ``/root``), the cluster goes to a per-stack directory in
        ``/var/tmp`` instead.
        """
        inside = self.state_dir / "pg"
        # The state directory itself is made traversable by `up`; only its ancestors matter.
        if os.geteuid() != 0 or _world_traversable(self.state_dir.parent):
            return inside
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"devstack-pg-{digest}"  # noqa: S108 - a fixed, per-stack name

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def redis_dir(self) -> Path:
        return self.state_dir / "redis"

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    # --- URLs ---------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def db_url(self) -> str:
        return f"postgresql://{DB_USER}:{DB_PASSWORD}@{self.host}:{self.db_port}/{DB_NAME}"

    def role_db_url(self, role: str) -> str:
        """URL for one of the baseline login roles (``authenticator``, ``supabase_auth_admin``)."""
        return f"postgresql://{role}:{DB_PASSWORD}@{self.host}:{self.db_port}/{DB_NAME}"


@dataclass(frozen=True)
class ProjectSettings:
    """The parts of ``supabase/config.toml`` devstack serves as the Supabase CLI would.

    Attributes:
        max_rows: ``[api] max_rows``, PostgREST's ``db-max-rows``.
        refresh_token_reuse_interval: ``[auth] refresh_token_reuse_interval``, seconds.
        rate_limits: ``[auth.rate_limit]``, GoTrue's per-IP limits per 5 minutes.
    """

    max_rows: int = 1000
    refresh_token_reuse_interval: int = 10
    rate_limits: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))

    @classmethod
    def load(cls, supabase_dir: Path) -> ProjectSettings:
        path = supabase_dir / "config.toml"
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except tomllib.TOMLDecodeError as error:
            raise SystemExit(f"{path}: {error}") from None
        api = data.get("api", {})
        auth = data.get("auth", {})
        limits = {key: float(value) for key, value in auth.get("rate_limit", {}).items() if key in DEFAULT_RATE_LIMITS}
        return cls(
            max_rows=int(api.get("max_rows", 1000)),
            refresh_token_reuse_interval=int(auth.get("refresh_token_reuse_interval", 10)),
            rate_limits={**DEFAULT_RATE_LIMITS, **limits},
        )


def _world_traversable(path: Path) -> bool:
    """True when every existing ancestor of ``path`` lets other users pass through (o+x)."""
    for part in [path, *path.parents]:
        try:
            mode = part.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & stat.S_IXOTH:
            return False
    return True
