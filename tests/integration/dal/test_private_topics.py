"""The app on private topics: which topics it holds as the user moves, and what a non-member's app gets.

Messages, edits, deletes, renames, membership changes, read positions across devices, typing and
presence between two clients are the tests of ``test_live_sync.py`` and ``test_membership_and_presence.py``;
they run over these topics, since the app has no other channel.
"""

from __future__ import annotations

import uuid

import pytest

from desktop_chat.dal.factory import DataLayer
from desktop_chat.models import ChatId, Message, UserId
from desktop_chat.realtime.manager import RealtimeManager
from desktop_chat.realtime.plan import HOT_CHATS
from desktop_chat.realtime.topics import chat_topic, typing_topic
from tests.integration.dal.conftest import (
    ALICE_EMAIL,
    BOB,
    BOB_EMAIL,
    CAROL_EMAIL,
    LayerFactory,
    alice_and_bob_in_a_new_chat,
    eventually,
    signed_in,
)

pytestmark = pytest.mark.integration


def link(layer: DataLayer) -> RealtimeManager:
    realtime = layer.store.signed_in.realtime
    assert realtime is not None
    return realtime


def holds(layer: DataLayer, chat: ChatId) -> bool:
    return {chat_topic(chat), typing_topic(chat)} <= link(layer).topics


def socket_channels(layer: DataLayer) -> dict[str, object]:
    socket = link(layer)._socket  # the live socket of the official client, to see what it joined
    assert socket is not None
    return {topic: channel for topic, channel in socket.channels.items() if topic != "phoenix"}


async def test_every_channel_is_private_and_none_binds_postgres_changes(make_layer: LayerFactory) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    await alice.store.open_chat(chat)
    await eventually(lambda: holds(alice, chat), what="the open chat's topics")
    channels = socket_channels(alice)
    me = alice.store.current_user
    assert me is not None
    assert f"realtime:user:{me.id}" in channels
    for topic, channel in channels.items():
        assert channel.params["config"]["private"] is True, topic  # type: ignore[attr-defined]
        assert channel.postgres_changes_callbacks == [], topic  # type: ignore[attr-defined]


async def test_topics_follow_the_user_from_chat_to_chat_and_leave_with_a_removal(make_layer: LayerFactory) -> None:
    alice = await signed_in(make_layer, "alice", ALICE_EMAIL)
    bob = await signed_in(make_layer, "bob", BOB_EMAIL)
    chats = [await alice.store.create_chat(f"switch {n} {uuid.uuid4().hex[:4]}", [BOB_EMAIL]) for n in range(5)]
    await eventually(lambda: all(bob.store.chat_list().get(c) is not None for c in chats), what="bob has them")

    opened: list[ChatId] = []
    for chat in chats:  # bob goes through the chats one by one, as he would with the chat list
        if opened:
            bob.store.close_chat(opened[-1])
        await bob.store.open_chat(chat)
        opened.append(chat)
        await eventually(lambda chat=chat: holds(bob, chat), what="the open chat's topics are joined")
    # The open chat and the ones opened just before it are held; the others were left.
    hot = opened[-HOT_CHATS:]
    await eventually(lambda: all(holds(bob, c) for c in hot), what="the recent ones are held")
    await eventually(lambda: not any(holds(bob, c) for c in opened[:-HOT_CHATS]), what="older ones left")
    assert link(bob).topics == {name for c in hot for name in (chat_topic(c), typing_topic(c))}
    assert all(f"realtime:{chat_topic(c)}" not in socket_channels(bob) for c in opened[:-HOT_CHATS])

    # A chat left behind still moves up and counts unread from its activity notice on user:<bob>.
    cold = opened[0]
    await alice.store.send(cold, "while bob looks elsewhere")
    await eventually(
        lambda: (
            (row := bob.store.chat_list().get(cold)) is not None
            and row.last_message is not None
            and row.last_message.content == "while bob looks elsewhere"
            and row.unread_count == 1
        ),
        what="the notice reached bob's chat list",
    )

    # Removed from the open chat: its topics are left at once, and it never comes back to the list.
    current = opened[-1]
    await alice.store.remove_member(current, UserId(BOB))
    await eventually(lambda: bob.store.chat_list().get(current) is None, what="gone from bob's list")
    await eventually(lambda: not holds(bob, current), what="its topics left")
    assert f"realtime:{chat_topic(current)}" not in socket_channels(bob)


async def test_a_non_members_app_gets_nothing_of_a_chat_even_when_it_asks(make_layer: LayerFactory) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    carol = await signed_in(make_layer, "carol", CAROL_EMAIL)
    heard: list[Message] = []
    typing: dict[ChatId, frozenset[UserId]] = {}
    online: dict[ChatId, frozenset[UserId]] = {}
    carol.store.subscribe_incoming(heard.append)
    carol.store.subscribe_typing(lambda c, users: typing.__setitem__(c, users))
    carol.store.subscribe_presence(lambda c, users: online.__setitem__(c, users))
    carol_link = link(carol)
    await carol.store.signed_in.tasks.settle()  # her chat list is shown: nothing resets what she asks for
    joins = carol_link.joins

    # Her app asks for the chat's topics as if she had it open: the server refuses both joins, and the
    # app lets them go (and checks its chat list, in case she was just removed).
    carol_link.watch_chats([chat])
    await eventually(lambda: carol_link.joins >= joins + 2, what="the joins were sent")
    await eventually(lambda: chat_topic(chat) not in carol_link.topics, what="refused and left")
    assert typing_topic(chat) not in carol_link.topics

    await alice.store.open_chat(chat)
    await bob.store.open_chat(chat)
    await eventually(lambda: holds(alice, chat) and holds(bob, chat))
    await alice.store.set_typing(chat, True)
    sent = await alice.store.send(chat, "for bob's eyes only")
    bob_view = await bob.store.open_chat(chat)
    await eventually(lambda: bob_view.get(sent) is not None, what="bob got it")
    # Carol's own chat, as the control: what reaches her arrives after what she must not get.
    control = await carol.store.create_chat(f"carol's {uuid.uuid4().hex[:4]}", [BOB_EMAIL])
    await bob.store.send(control, "control")
    await eventually(lambda: any(m.content == "control" for m in heard), what="carol hears her own chat")
    assert all(m.chat_id != chat for m in heard)
    assert carol.store.chat_list().get(chat) is None
    assert chat not in typing and chat not in online
    assert chat_topic(chat) not in carol_link.topics
