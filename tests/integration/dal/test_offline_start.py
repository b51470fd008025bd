"""Starting with the server down: the saved session opens the cache, sends wait, and all catches up later."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from desktop_chat.dal.api import ConnectionState
from desktop_chat.errors import BackendUnavailable
from desktop_chat.models import DeliveryState
from tests.conftest import StackHandle
from tests.integration.dal.conftest import (
    ALICE,
    ALICE_EMAIL,
    BOB_EMAIL,
    PASSWORD,
    LayerFactory,
    eventually,
)
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration


async def test_an_offline_start_shows_the_cache_and_sends_later(make_layer: LayerFactory, stack: StackHandle) -> None:
    keyring = MemoryKeyring()  # the same OS keyring for both runs of the app
    redis_url = stack.redis_url.rsplit("/", 1)[0] + "/11"
    first = await make_layer("alice", keyring=keyring, redis_url=redis_url)
    await first.store.sign_in(ALICE_EMAIL, PASSWORD)
    chat = await first.store.create_chat("offline start", [BOB_EMAIL])
    await first.store.open_chat(chat)
    await first.store.settle()
    chats = await first.store.recent_chats()
    settings = first.settings
    await first.close()

    gateway = stack.stack.gateway
    gateway.stop()
    try:
        again = await make_layer(
            "alice-again",
            keyring=keyring,
            redis_url=redis_url,
            config_dir=settings.config_dir,
            data_dir=settings.data_dir,
        )
        store = again.store
        profile = await store.restore_session()
        assert profile is not None and profile.id == ALICE and profile.display_name == "Alice"
        # The saved session is shown at once; its confirmation finds the server away.
        await eventually(lambda: store.status.backend_reachable is False, what="the server found away")
        assert "Cannot reach" in store.status.detail
        assert [c.chat.id for c in await store.recent_chats()] == [c.chat.id for c in chats]  # the cache
        timeline = await store.open_chat(chat)
        message_id = await store.send(chat, "typed while offline")
        assert timeline.get(message_id).delivery is DeliveryState.PENDING  # type: ignore[union-attr]
        with pytest.raises(BackendUnavailable, match="Cannot reach"):
            await again.backend.fetch_recent_chats()  # never as anon: that would read as "no chats"
    finally:
        gateway.start()
    await eventually(lambda: store.status.connection is ConnectionState.LIVE, within=60, what="back online")
    await eventually(
        lambda: (m := timeline.get(message_id)) is not None and m.delivery is DeliveryState.SENT,
        within=30,
        what="the offline message went out",
    )
    assert store.status.backend_reachable is True
    assert store.status.outbox_depth == 0


async def test_restarted_offline_long_after_the_ttls_the_saved_chats_history_and_names_show(
    make_layer: LayerFactory, stack: StackHandle, tmp_path: Path
) -> None:
    """The app's own Redis keeps the cache between runs, and a stale entry is still shown: offline, the
    last chat list, each cached chat's history and its members' names are there at once."""
    keyring = MemoryKeyring()
    quick = {"cache_ttl_recent": 1, "cache_ttl_chat": 1, "cache_ttl_messages": 1}  # all stale by the restart
    dirs = {"config_dir": tmp_path / "home" / "config", "data_dir": tmp_path / "home" / "data"}
    dirs["cache_dir"] = tmp_path / "home" / "cache"
    first = await make_layer("alice", keyring=keyring, managed_redis=True, **dirs, **quick)
    await first.store.sign_in(ALICE_EMAIL, PASSWORD)
    await first.store.settle()  # the warm-up: the top chats' newest pages and members
    warmed = first.store.chat_list().rows[0].chat.id  # never opened in this test
    chat = await first.store.create_chat("kept for offline", [BOB_EMAIL])
    timeline = await first.store.open_chat(chat)
    said = await first.store.send(chat, "said before the restart")
    await eventually(lambda: (m := timeline.get(said)) is not None and m.seq is not None, what="delivered")
    assert {m.display_name for m in (await first.store.chat_details(chat)).members} == {"Alice", "Bob"}
    await eventually(lambda: first.store.chat_list().get(chat) is not None, what="listed")
    await first.store.settle()
    listed = [row.chat.id for row in first.store.chat_list().rows]
    await first.close()
    await asyncio.sleep(1.5)  # past every TTL

    gateway = stack.stack.gateway
    gateway.stop()
    try:
        again = await make_layer("alice-again", keyring=keyring, managed_redis=True, **dirs, **quick)
        store = again.store
        assert await store.restore_session() is not None
        await store.refresh_chats()  # from the cache, whether or not the confirmation has failed yet
        await eventually(lambda: store.status.backend_reachable is False, what="the server found away")
        assert [row.chat.id for row in store.chat_list().rows] == listed
        history = await store.open_chat(chat)
        assert [m.content for m in history.rows][-1:] == ["said before the restart"]
        details = await store.chat_details(chat)
        assert {m.display_name for m in details.members} == {"Alice", "Bob"}
        # A chat alice never opened: its members were loaded with the first run's warm-up.
        members = (await store.chat_details(warmed)).members
        assert members and all(m.display_name for m in members)
        queued = await store.send(chat, "queued while offline")
        assert history.get(queued).delivery is DeliveryState.PENDING  # type: ignore[union-attr]
    finally:
        gateway.start()
    await eventually(lambda: store.status.connection is ConnectionState.LIVE, within=60, what="back online")
    await eventually(
        lambda: (m := history.get(queued)) is not None and m.delivery is DeliveryState.SENT,
        within=30,
        what="the offline message went out",
    )


async def test_a_message_sent_just_before_quitting_is_in_the_cached_history(make_layer: LayerFactory) -> None:
    """Quitting before the realtime echo of our last message arrived (here: it never does) must not leave it
    out of the history that the next start shows from the cache: the server's answer is the chat's next
    change, so it goes into the cache at once."""
    alice = await make_layer("alice", realtime=False)
    await alice.store.sign_in(ALICE_EMAIL, PASSWORD)
    chat = await alice.store.create_chat("sent just before quitting", [BOB_EMAIL])
    timeline = await alice.store.open_chat(chat)
    await alice.store.settle()  # the window is cached (empty) and the back-fill on open is done
    said = await alice.store.send(chat, "said just before quitting")
    await eventually(lambda: (m := timeline.get(said)) is not None and m.seq is not None, what="sent")
    await alice.store.settle()
    cached = await alice.cache.get_messages(ALICE, chat)
    assert cached is not None and [m.content for m in cached.value] == ["said just before quitting"]


async def test_our_sent_message_waits_for_the_change_stream_when_a_change_lies_between(
    make_layer: LayerFactory,
) -> None:
    """Bob edits his message while alice's client has not heard of it yet, then alice sends: her message is
    not the chat's next change for her cache, which would otherwise skip bob's edit for good (the next start's
    cursor begins at the cached window's newest rev). The back-fill brings both, in order."""
    alice = await make_layer("alice", realtime=False)
    bob = await make_layer("bob", realtime=False)
    await alice.store.sign_in(ALICE_EMAIL, PASSWORD)
    await bob.store.sign_in(BOB_EMAIL, PASSWORD)
    chat = await alice.store.create_chat("a change between", [BOB_EMAIL])
    bobs = await bob.store.open_chat(chat)
    first = await bob.store.send(chat, "first draft")
    await eventually(lambda: (m := bobs.get(first)) is not None and m.seq is not None, what="bob's message sent")
    timeline = await alice.store.open_chat(chat)
    await alice.store.settle()
    assert [m.content for m in timeline.rows] == ["first draft"]
    await bob.store.edit_message(first, "second draft")  # alice has no realtime: she does not hear of it
    said = await alice.store.send(chat, "alice's reply")
    await eventually(lambda: (m := timeline.get(said)) is not None and m.seq is not None, what="alice's sent")
    await alice.store.settle()
    cached = await alice.cache.get_messages(ALICE, chat)
    assert cached is not None and [m.content for m in cached.value] == ["first draft"]
    alice.store.close_chat(chat)
    timeline = await alice.store.open_chat(chat)  # opening back-fills the chat from its cursor
    await alice.store.settle()
    assert [m.content for m in timeline.rows] == ["second draft", "alice's reply"]
    cached = await alice.cache.get_messages(ALICE, chat)
    assert cached is not None and [m.content for m in cached.value] == ["second draft", "alice's reply"]
