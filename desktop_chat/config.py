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
    cache_max_messages_per_chat: int = Field(default=200, ge=50, le=5000)
    cache_max_chats_per_user: int = Field(default=200, ge=5, le=10_000)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)))
    config_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_config_dir(APP_NAME)))
    log_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_log_dir(APP_NAME)))
    runtime_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_runtime_dir(APP_NAME)))
