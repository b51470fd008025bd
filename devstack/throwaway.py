"""Throwaway stacks on free ports, for the test suite and the benchmarks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devstack.config import RAISED_RATE_LIMITS, StackConfig
from devstack.procs import PortTaken, free_port
from devstack.stack import Stack

PORT_ATTEMPTS = 3


def throwaway_config(state_dir: Path | None = None, **overrides: Any) -> StackConfig:
    """A config in a fresh temporary directory on free ports, without fsync.

    Auth rate limits are raised (a test suite signs in hundreds of times from one address); pass
    ``auth_rate_limits`` to test them.
    """
    values: dict[str, Any] = {
        "state_dir": state_dir or Path(tempfile.mkdtemp(prefix="devstack-throwaway-")),
        "api_port": free_port(),
        "db_port": free_port(),
        "redis_port": free_port(),
        "ephemeral": True,
        "auth_rate_limits": RAISED_RATE_LIMITS,
    }
    values.update(overrides)
    return StackConfig(**values)


@contextmanager
def throwaway_stack(*, seed: bool = True, **overrides: Any) -> Iterator[tuple[Stack, dict[str, Any]]]:
    """Start a stack, yield it with its connection info, and delete it afterwards.

    A port that was free when picked can be taken before the server binds it (by another stack, or as
    the local end of some outgoing connection): then the stack starts again on fresh ports, a few times.
    """
    for attempt in range(PORT_ATTEMPTS):
        stack = Stack(throwaway_config(**overrides))
        try:
            info = stack.up(seed=seed)
        except PortTaken:
            stack.destroy()
            if attempt == PORT_ATTEMPTS - 1 or {"api_port", "db_port", "redis_port"} & set(overrides):
                raise
            continue
        except BaseException:
            stack.destroy()
            raise
        try:
            yield stack, info
        finally:
            stack.destroy()
        return
