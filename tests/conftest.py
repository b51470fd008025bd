"""Session-wide fixtures: one throwaway devstack (PostgreSQL, Redis, gateway) on free ports.

The stack is started only when a test asks for it, lives in its own temporary state directory and is
destroyed at the end of the session, so tests never touch a developer's running stack.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from devstack.config import StackConfig
from devstack.stack import Stack
from devstack.throwaway import throwaway_stack

# The machines that run the suite are shared and often loaded: generating examples slowly there is not
# a failure of the property (the properties themselves are unchanged), and a per-example deadline would
# time the machine, not the code.
settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")


@dataclass(frozen=True)
class StackHandle:
    """A running throwaway stack and what clients need to reach it."""

    stack: Stack
    info: dict[str, Any]

    @property
    def config(self) -> StackConfig:
        return self.stack.config

    @property
    def db_url(self) -> str:
        return str(self.info["db_url"])

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def redis_url(self) -> str:
        return str(self.info["redis_url"])

    @property
    def anon_key(self) -> str:
        return str(self.info["anon_key"])

    @property
    def service_role_key(self) -> str:
        return str(self.info["service_role_key"])


@pytest.fixture(scope="session")
def stack() -> Iterator[StackHandle]:
    with throwaway_stack() as (handle, info):
        yield StackHandle(handle, info)


@pytest.fixture(scope="session", autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the app's data, config, runtime files and keyring fallback out of the real home directory."""
    home = tmp_path_factory.mktemp("home")
    keys = (
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
        "XDG_STATE_HOME",
        "XDG_CACHE_HOME",
        "XDG_RUNTIME_DIR",
        "PYTHON_KEYRING_BACKEND",
    )
    saved = {key: os.environ.get(key) for key in keys}
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_STATE_HOME"] = str(home / "state")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")  # the managed Redis's snapshot
    # The managed Redis's socket lives here; platformdirs also warns (an error under pytest) without it.
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    # Never the developer's real keyring: code under test that wants one passes its own backend.
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
