"""Every setting of desktop-chat, in one typed place.

Values come from (highest first) the constructor, ``DESKTOP_CHAT_*`` environment variables, the user's
settings file (``settings.json`` in ``config_dir``, written by the settings dialog) and the defaults
below. The defaults point at a local stack (``supabase start`` or ``devstack up``), whose anon key is the
Supabase CLI's public local default.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from desktop_chat.errors import LocalStorageError

APP_NAME = "desktop-chat"

LOCAL_SUPABASE_URL = "http://127.0.0.1:54321"
LOCAL_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9"
    ".CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)


ENV_PREFIX = "DESKTOP_CHAT_"
SETTINGS_FILE_NAME = "settings.json"

# What the settings file may hold: what the settings dialog edits. Secrets and directories stay out of it
# (a directory in the file could not say where the file itself is).
USER_EDITABLE = frozenset(
    {
        "supabase_url",
        "supabase_anon_key",  # public by design (the project's anon or publishable key): not a secret
        "last_email",
        "redis_url",
        "cache_enabled",
        "cache_ttl_recent",
        "cache_ttl_chat",
        "cache_ttl_messages",
        "cache_keep_days",
        "log_level",
        "theme",
        "notifications",
    }
)

_log = logging.getLogger(__name__)


def default_runtime_dir() -> Path:
    """Where the app's own redis-server puts its socket: the XDG runtime directory, or, on a Linux
    session without one (a container, ssh), a per-user directory in the temp dir instead of
    platformdirs' fallback, which warns on every start."""
    if sys.platform.startswith("linux") and not os.environ.get("XDG_RUNTIME_DIR"):
        return Path(tempfile.gettempdir()) / f"{APP_NAME}-{os.getuid()}"
    return Path(platformdirs.user_runtime_dir(APP_NAME))


def _default_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def user_settings_path(config_dir: Path) -> Path:
    """Where the settings file lives inside ``config_dir``."""
    return config_dir / SETTINGS_FILE_NAME


def read_user_settings(config_dir: Path) -> dict[str, Any]:
    """The user-editable values stored in ``config_dir``'s settings file; {} if there is none.

    A file that is not a JSON object is ignored with a warning rather than keeping the app from starting;
    the next save replaces it.
    """
    path = user_settings_path(config_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        _log.warning("Ignoring the settings file %s: %s", path, error)
        return {}
    if not isinstance(data, dict):
        _log.warning("Ignoring the settings file %s: not a JSON object", path)
        return {}
    return {key: value for key, value in data.items() if key in USER_EDITABLE}


def save_user_settings(config_dir: Path, updates: Mapping[str, Any]) -> Path:
    """Merge ``updates`` into the settings file and write it atomically; returns its path.

    Raises:
        ValueError: A key is not user-editable.
        LocalStorageError: The file cannot be written.
    """
    unknown = sorted(set(updates) - USER_EDITABLE)
    if unknown:
        raise ValueError(f"not user-editable settings: {', '.join(unknown)}")
    path = user_settings_path(config_dir)
    merged = {**read_user_settings(config_dir), **updates}
    try:
        config_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        partial.replace(path)  # atomic on POSIX and Windows: a crash leaves the old file or the new one
    except OSError as error:
        raise LocalStorageError(f"Cannot save the settings to {path}: {error.strerror or error}") from error
    return path


def server_chosen(settings: Settings) -> bool:
    """Whether the server was chosen (settings file, environment, command line), not left at the default."""
    return "supabase_url" in settings.model_fields_set


def env_overrides(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Names of the settings that environment variables set (they win over the settings file)."""
    environ = os.environ if environ is None else environ
    present = {key.upper() for key in environ}
    return frozenset(name for name in Settings.model_fields if f"{ENV_PREFIX}{name}".upper() in present)


class _UserFileSource(PydanticBaseSettingsSource):
    """Reads ``settings.json`` from the config directory chosen by the sources before it (or the default)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ returns the whole mapping at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        chosen = self.current_state.get("config_dir")
        config_dir = Path(chosen) if chosen else _default_config_dir()
        return read_user_settings(config_dir)


class Settings(BaseSettings):
    """Application settings; see the README for how to point them at a hosted Supabase project."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Constructor and environment first, so DESKTOP_CHAT_* variables still win over the settings file.
        return init_settings, env_settings, _UserFileSource(settings_cls), dotenv_settings, file_secret_settings

    supabase_url: str = Field(default=LOCAL_SUPABASE_URL, description="Base URL of the Supabase project.")
    supabase_anon_key: SecretStr = Field(
        default=SecretStr(LOCAL_ANON_KEY), description="The project's anon (publishable) key."
    )
    request_timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds per Supabase call.")
    last_email: str | None = Field(
        default=None, description="Who signed in last on this computer (the sign-in window fills it in)."
    )

    redis_url: str | None = Field(
        default=None,
        description="Redis for the cache; unset means the app starts its own private redis-server.",
    )
    cache_enabled: bool = True
    cache_ttl_recent: int = Field(default=300, ge=1, description="Recent chats list TTL, seconds.")
    cache_ttl_chat: int = Field(default=1800, ge=1, description="Chat details and members TTL, seconds.")
    cache_ttl_messages: int = Field(default=900, ge=1, description="Message list TTL, seconds.")
    cache_max_messages_per_chat: int = Field(
        default=200, ge=50, le=5000, description="Newest messages kept per cached chat; older ones are trimmed."
    )
    cache_max_chats_per_user: int = Field(
        default=200, ge=5, le=10_000, description="Chats cached per user; the least recently used are evicted."
    )
    cache_keep_days: float = Field(
        default=30,
        gt=0,
        le=365,
        description=(
            "Days an entry stays usable after its TTL: shown (marked not up to date) while a refresh runs, "
            "and what an offline start shows. TTLs decide when to revalidate, not whether to show."
        ),
    )
    cache_memory_max_entries: int = Field(
        default=2000, ge=0, le=1_000_000, description="In-process fallback tier: most entries held (0: none)."
    )
    cache_memory_max_bytes: int = Field(
        default=32 * 1024 * 1024, ge=0, description="In-process fallback tier: most value bytes held."
    )
    redis_connect_timeout: float = Field(
        default=0.5, gt=0, le=30, description="Seconds to connect to Redis before the cache counts it as down."
    )
    redis_socket_timeout: float = Field(
        default=0.25, gt=0, le=30, description="Seconds to wait for a Redis reply before the call counts as failed."
    )
    redis_maxmemory_mb: int = Field(default=64, ge=8, le=4096, description="maxmemory of the app's own Redis.")
    cache_breaker_errors: int = Field(
        default=1, ge=1, le=100, description="Consecutive failed Redis reads that switch to the memory tier."
    )
    cache_breaker_slow_seconds: float = Field(
        default=0.1, gt=0, le=30, description="A Redis call slower than this counts as slow."
    )
    cache_breaker_slow_calls: int = Field(
        default=5, ge=1, le=1000, description="Slow calls within the slow window that switch to the memory tier."
    )
    cache_breaker_slow_window: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds over which slow Redis calls are counted."
    )
    cache_probe_backoff: float = Field(
        default=1.0, gt=0, le=600, description="Seconds before the first probe of Redis after it failed."
    )
    cache_probe_backoff_max: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait between probes; the wait doubles after each failure."
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    theme: Literal["system", "light", "dark"] = Field(
        default="system", description="Colours: follow the system's light or dark mode, or force one."
    )
    notifications: bool = Field(default=True, description="Desktop notifications for messages not in view.")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)))
    config_dir: Path = Field(default_factory=_default_config_dir)
    cache_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_cache_dir(APP_NAME)),
        description="Where the app's own Redis keeps the cache between runs (encrypted values).",
    )
    log_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_log_dir(APP_NAME)))
    runtime_dir: Path = Field(default_factory=lambda: default_runtime_dir())
