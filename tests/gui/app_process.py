"""The real app in a process of its own, as a user runs it: its environment, pointed at a throwaway stack."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import StackHandle


def app_environment(stack: StackHandle, home: Path, **overrides: str) -> dict[str, str]:
    """The app's environment: this one without any ``DESKTOP_CHAT_`` setting, the stack's address and key, a
    home of its own under ``home`` (config, data, cache, runtime, logs), then ``overrides`` (the display,
    the Qt platform, other settings)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DESKTOP_CHAT_")}
    env.update(
        {
            "DESKTOP_CHAT_SUPABASE_URL": stack.api_url,
            "DESKTOP_CHAT_SUPABASE_ANON_KEY": stack.anon_key,
            "DESKTOP_CHAT_CONFIG_DIR": str(home / "config"),
            "DESKTOP_CHAT_DATA_DIR": str(home / "data"),
            "DESKTOP_CHAT_CACHE_DIR": str(home / "cache"),
            "DESKTOP_CHAT_RUNTIME_DIR": str(home / "run"),
            "DESKTOP_CHAT_LOG_DIR": str(home / "log"),
            **overrides,
        }
    )
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no desktop's notifications from a test
    return env
