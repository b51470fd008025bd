"""freeze_long_lived freezes what is alive once per process, and never again."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from desktop_chat.heap import freeze_long_lived


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start from an unfrozen heap (an in-process app run may have frozen it) and leave it as it was."""
    was_frozen = gc.get_freeze_count() > 0
    gc.unfreeze()
    yield
    gc.unfreeze()
    if was_frozen:
        gc.freeze()


def test_the_first_call_freezes_what_is_alive_and_a_second_does_nothing(unfrozen: None) -> None:
    alive = [[index] for index in range(1000)]  # tracked containers alive now
    frozen = freeze_long_lived()
    assert frozen == gc.get_freeze_count() >= len(alive)
    later = [[index] for index in range(1000)]
    assert freeze_long_lived() == 0
    assert gc.get_freeze_count() == frozen  # what came later is left to the collector
    assert later


def test_a_full_collection_walks_none_of_the_frozen_objects(unfrozen: None) -> None:
    before = [1, 2, 3]
    freeze_long_lived()
    after = [4, 5, 6]
    walked = gc.get_objects()  # what a collection of every generation examines
    assert any(obj is after for obj in walked)
    assert not any(obj is before for obj in walked)
    assert len(walked) < gc.get_freeze_count()
