"""Throwaway stacks start on fresh ports when a port picked as free is taken before the server binds it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import devstack.throwaway
from devstack.procs import PortTaken, free_port
from devstack.throwaway import throwaway_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_taken_after_it_was_picked_is_picked_again(held_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    picks = iter([held_port])  # the gateway's port, picked first, is the one taken

    def pick() -> int:
        return next(picks, None) or free_port()

    monkeypatch.setattr(devstack.throwaway, "free_port", pick)
    with throwaway_stack(seed=False) as (stack, info):
        assert stack.config.api_port != held_port
        assert stack.gateway.running()
        assert str(stack.config.api_port) in info["api_url"]


def test_a_port_the_caller_chose_is_not_replaced(held_port: int) -> None:
    with pytest.raises(PortTaken, match=str(held_port)), throwaway_stack(seed=False, api_port=held_port):
        pass
