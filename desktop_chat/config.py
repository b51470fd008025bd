"""Every setting of desktop-chat, in one typed place.

Values come from (highest first) the constructor, ``DESKTOP_CHAT_*`` environment variables and the
defaults below. The defaults point at a local stack (``supabase start`` or ``devstack up``), whose
anon key is the Supabase CLI's public local default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "desktop-chat"

LOCAL_SUPABASE_URL = "http://127.0.0.1:54321"
LOCAL_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9"
    ".CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)


class Settings(BaseSettings):
    """Application settings; see the README for how to point them at a hosted Supabase project."""

    model_config = SettingsConfigDict(env_prefix="DESKTOP_CHAT_", extra="ignore", frozen=True)

    supabase_url: str = Field(default=LOCAL_SUPABASE_URL, description="Base URL of the Supabase project.")
    supabase_anon_key: SecretStr = Field(
        default=SecretStr(LOCAL_ANON_KEY), description="The project's anon (publishable) key."
    )
    request_timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds per Supabase call.")

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
    cache_stale_grace: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Seconds an entry is kept after its TTL, served as stale while one refresh runs.",
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

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)))
    config_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_config_dir(APP_NAME)))
    log_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_log_dir(APP_NAME)))
    runtime_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_runtime_dir(APP_NAME)))
