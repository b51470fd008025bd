"""The test double keeps up with the contract: every ChatStoreAPI member, with the same shape."""

from __future__ import annotations

import inspect

from desktop_chat.dal.api import ChatStoreAPI
from tests.gui.fakes import FakeChatStore


def protocol_members() -> list[str]:
    return [name for name in vars(ChatStoreAPI) if not name.startswith("_")]


def test_the_fake_implements_every_member_of_the_protocol() -> None:
    for name in protocol_members():
        expected = inspect.getattr_static(ChatStoreAPI, name)
        actual = inspect.getattr_static(FakeChatStore, name, None)
        assert actual is not None, f"FakeChatStore lacks {name}"
        if isinstance(expected, property):
            assert isinstance(actual, property), name
            continue
        assert inspect.iscoroutinefunction(expected) == inspect.iscoroutinefunction(actual), name
        assert list(inspect.signature(expected).parameters) == list(inspect.signature(actual).parameters), name


def test_there_is_a_protocol_to_check() -> None:
    assert {"send", "open_chat", "load_older", "subscribe_status", "current_user"} <= set(protocol_members())
