"""Message search through the data layer over the real stack, and offline: the cached messages instead."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import StackHandle
from tests.integration.dal.conftest import LayerFactory, alice_and_bob_in_a_new_chat, eventually

pytestmark = pytest.mark.integration


def _token() -> str:
    return "".join(chr(ord("a") + int(digit, 16)) for digit in uuid.uuid4().hex[:10])


async def test_offline_the_cached_messages_are_searched_and_the_answer_says_so(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    word = _token()
    await bob.store.send(chat, f"meet at the {word} tonight")
    timeline = await alice.store.open_chat(chat)
    await eventually(lambda: any(word in m.content for m in timeline.rows), what="alice sees it")
    # A chat alice has never opened: its messages are not on this computer.
    unseen = await bob.store.create_chat(f"unseen {uuid.uuid4().hex[:6]}", ["alice@example.com"])
    await bob.store.send(unseen, f"the {word} again, elsewhere")
    await eventually(lambda: bob.store.status.outbox_depth == 0, what="bob's messages went out")

    online = await alice.store.search_messages(word[:5])
    assert not online.local
    assert {hit.chat_id for hit in online.hits} == {chat, unseen}

    gateway = stack.stack.gateway
    gateway.stop()
    try:
        offline = await alice.store.search_messages(word[:5])
        assert offline.local and offline.next_cursor is None
        [hit] = offline.hits  # the cached chat's message only
        assert hit.chat_id == chat and bob.store.current_user is not None
        assert hit.sender_id == bob.store.current_user.id
        assert [text for text, lit in hit.snippet_parts() if lit] == [word]
        assert alice.store.status.backend_reachable is False
        # Known to be offline: the cache answers straight away (no request that would time out first).
        assert (await alice.store.search_messages(word, chat_id=chat)).local
    finally:
        gateway.start()
    # The link comes back by itself (its back-fill reaches the server), and so does the server's search.
    await eventually(lambda: alice.store.status.backend_reachable, within=30, what="the server is reachable again")
    assert not (await alice.store.search_messages(word)).local
