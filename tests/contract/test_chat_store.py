"""One behaviour contract for every ``ChatStoreAPI``: the real store over the throwaway stack, and the
``FakeChatStore`` the widget tests use, so the fake cannot drift from what the real one does and says.

Both worlds hold the same people (alice, who signs in, bob and carol, password ``password123``). What
only another client can do (bob making a chat and posting in it) is each world's own business: the fake
scripts it, the real world signs bob in on a second data layer. Everything else goes through the API,
and every refusal is checked with the real store's wording.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from desktop_chat.config import Settings
from desktop_chat.dal.api import ChatStoreAPI, StoreStatus, Timeline
from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.errors import InvalidInput, NotSignedIn, Rejected, Unauthorized
from desktop_chat.models import ChatId, DeliveryState, MemberRole, Message, MessageId, UserId
from tests.conftest import StackHandle
from tests.gui.fakes import populated_store
from tests.history import write_history
from tests.integration.dal.conftest import eventually
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration

PASSWORD = "password123"
ALICE_EMAIL, BOB_EMAIL, CAROL_EMAIL = "alice@example.com", "bob@example.com", "carol@example.com"
BOOK_CLUB_CHAT = ChatId(uuid.UUID("c0000000-0000-4000-8000-00000000b0ca"))  # the seed's chat alice is not in
ALICE_DB, BOB_DB = 3, 4  # each data layer's cache key claims its own Redis database
CHAT_PAGE = 4  # chat-list rows per page in both worlds, so that a few chats make several pages


@dataclass
class World:
    """A store to test, and what the rest of the world does around it."""

    kind: str
    store: ChatStoreAPI
    user_id: Callable[[str], UserId]
    # A chat bob owns, with alice and carol in it, where bob has just said ``text`` (alice sees it).
    bobs_chat: Callable[[str], Awaitable[ChatId]]
    foreign_chat: ChatId  # a chat alice is not in
    # A chat of bob's with alice and carol holding ``count`` messages; made before alice signs in.
    long_chat: Callable[[int], Awaitable[ChatId]]

    async def sign_in(self) -> None:
        await self.store.sign_in(ALICE_EMAIL, PASSWORD)


# --- the two worlds ------------------------------------------------------------------------------------
def fake_world() -> World:
    store, cast = populated_store(signed_in=False, auto_deliver=True)
    store.chat_page = CHAT_PAGE
    foreign = store.add_chat("Book club", [cast.carol, cast.bob], owner=cast.carol)

    async def bobs_chat(text: str) -> ChatId:
        chat = store.add_chat(f"bob's {uuid.uuid4().hex[:6]}", [cast.bob, cast.alice, cast.carol], owner=cast.bob)
        store.receive(chat, cast.bob, text)
        return chat

    async def long_chat(count: int) -> ChatId:
        return store.add_chat(f"long {uuid.uuid4().hex[:6]}", [cast.bob, cast.alice, cast.carol], history=count)

    return World("fake", store, lambda email: store.user(email).id, bobs_chat, foreign, long_chat)


def settings_for(stack: StackHandle, home: Path, db: int) -> Settings:
    return Settings(
        supabase_url=stack.api_url,
        supabase_anon_key=SecretStr(stack.anon_key),
        redis_url=stack.redis_url.rsplit("/", 1)[0] + f"/{db}",
        config_dir=home / "config",
        data_dir=home / "data",
        runtime_dir=home / "run",
        cache_dir=home / "cache",
        log_dir=home / "log",
        request_timeout=5.0,
    )


REAL_IDS = {
    ALICE_EMAIL: UserId(uuid.UUID("a11ce000-0000-4000-8000-000000000001")),
    BOB_EMAIL: UserId(uuid.UUID("b0b00000-0000-4000-8000-000000000002")),
    CAROL_EMAIL: UserId(uuid.UUID("ca201000-0000-4000-8000-000000000003")),
}


@pytest.fixture(params=["fake", "real"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    if request.param == "fake":
        yield fake_world()
        return
    stack: StackHandle = request.getfixturevalue("stack")
    layers: list[DataLayer] = []
    alice = await open_data_layer(
        settings_for(stack, tmp_path / "alice", ALICE_DB), keyring_backend=MemoryKeyring(), chat_page=CHAT_PAGE
    )
    layers.append(alice)

    async def bobs_chat(text: str) -> ChatId:
        home = tmp_path / f"bob-{len(layers)}"
        bob = await open_data_layer(settings_for(stack, home, BOB_DB), keyring_backend=MemoryKeyring(), realtime=False)
        layers.append(bob)
        await bob.store.sign_in(BOB_EMAIL, PASSWORD)
        chat = await bob.store.create_chat(f"bob's {uuid.uuid4().hex[:6]}", [ALICE_EMAIL, CAROL_EMAIL])
        # Alice learns of the chat first (realtime: her membership), then of bob's message.
        await eventually(lambda: alice.store.chat_list().get(chat) is not None, what="alice sees bob's chat")
        await bob.store.send(chat, text)
        await eventually(lambda: bob.store.status.outbox_depth == 0, what="bob's message went out")
        return chat

    async def long_chat(count: int) -> ChatId:
        bob = await open_data_layer(
            settings_for(stack, tmp_path / f"bob-{len(layers)}", BOB_DB),
            keyring_backend=MemoryKeyring(),
            realtime=False,
        )
        layers.append(bob)
        await bob.store.sign_in(BOB_EMAIL, PASSWORD)
        chat = await bob.store.create_chat(f"long {uuid.uuid4().hex[:6]}", [ALICE_EMAIL, CAROL_EMAIL])
        people = [REAL_IDS[BOB_EMAIL], REAL_IDS[ALICE_EMAIL], REAL_IDS[CAROL_EMAIL]]
        await write_history(stack.db_url, chat, people, count)
        return chat

    try:
        yield World("real", alice.store, REAL_IDS.__getitem__, bobs_chat, BOOK_CLUB_CHAT, long_chat)
    finally:
        for layer in reversed(layers):
            await layer.close()


# --- helpers ---------------------------------------------------------------------------------------------
async def new_chat(world: World, *emails: str) -> ChatId:
    chat = await world.store.create_chat(f"contract {uuid.uuid4().hex[:6]}", list(emails))
    await eventually(lambda: world.store.chat_list().get(chat) is not None, what="the new chat is listed")
    return chat


def row_of(timeline: Timeline, message_id: MessageId) -> Message | None:
    return timeline.get(message_id)


async def sent(timeline: Timeline, message_id: MessageId) -> Message:
    await eventually(lambda: (m := timeline.get(message_id)) is not None and m.delivery is DeliveryState.SENT)
    message = timeline.get(message_id)
    assert message is not None and message.seq is not None
    return message


async def shown(store: ChatStoreAPI, chat: ChatId, message_id: MessageId, delivery: DeliveryState) -> Message:
    """The row of ``message_id`` once the chat's timeline shows it as ``delivery`` (reopened each time: a
    chat one is not in is not kept open)."""
    async with asyncio.timeout(10):
        while True:
            row = (await store.open_chat(chat)).get(message_id)
            if row is not None and row.delivery is delivery:
                return row
            await asyncio.sleep(0.05)


# --- signing in and out --------------------------------------------------------------------------------
async def test_signed_out_there_is_nothing_to_see_and_nothing_to_do(world: World) -> None:
    store = world.store
    assert store.current_user is None
    assert await store.restore_session() is None  # nothing saved
    assert list(store.chat_list().rows) == []
    assert store.has_older(world.foreign_chat) is False
    assert store.has_newer(world.foreign_chat) is False
    assert store.has_more_chats() is False
    store.close_chat(world.foreign_chat)  # harmless
    with pytest.raises(NotSignedIn, match=r"^You are not signed in\.$"):
        await store.recent_chats()
    with pytest.raises(NotSignedIn, match=r"^You are not signed in\.$"):
        await store.load_more_chats()
    with pytest.raises(NotSignedIn, match=r"^You are not signed in\.$"):
        await store.search_chats("anything")
    with pytest.raises(NotSignedIn, match=r"^You are not signed in\.$"):
        await store.chat_members(world.foreign_chat)
    with pytest.raises(NotSignedIn, match=r"^You are not signed in\.$"):
        await store.send(world.foreign_chat, "hello")
    with pytest.raises(NotSignedIn, match=r"^You are not signed in\.$"):
        await store.open_at(world.foreign_chat, 1)
    with pytest.raises(NotSignedIn, match=r"^You are not signed in\.$"):
        await store.search_messages("hello")


async def test_sign_in_checks_the_input_then_the_credentials(world: World) -> None:
    store = world.store
    with pytest.raises(InvalidInput, match=r"^Enter your email address and password\.$"):
        await store.sign_in("  ", PASSWORD)
    with pytest.raises(Unauthorized, match=r"^Wrong email or password\.$"):
        await store.sign_in(ALICE_EMAIL, "not the password")
    assert store.current_user is None
    profile = await store.sign_in(ALICE_EMAIL, PASSWORD)
    assert profile.id == world.user_id(ALICE_EMAIL)
    assert store.current_user == profile


async def test_sign_up_refuses_a_bad_name_a_taken_address_and_a_weak_password(world: World) -> None:
    store = world.store
    with pytest.raises(InvalidInput, match=r"^The display name is empty\.$"):
        await store.sign_up(f"new-{uuid.uuid4().hex[:8]}@example.com", PASSWORD, "   ")
    with pytest.raises(Rejected, match=r"^An account with this email address already exists\.$"):
        await store.sign_up(ALICE_EMAIL, PASSWORD, "Alice again")
    with pytest.raises(InvalidInput, match=r"^That password is too weak \(length\); use at least 6 characters\.$"):
        await store.sign_up(f"new-{uuid.uuid4().hex[:8]}@example.com", "123", "Someone")
    assert store.current_user is None


async def test_signing_out_leaves_nothing_behind(world: World) -> None:
    store = world.store
    await world.sign_in()
    await store.refresh_chats()
    assert store.chat_list().rows
    await store.sign_out()
    assert store.current_user is None
    assert list(store.chat_list().rows) == []
    with pytest.raises(NotSignedIn):
        await store.recent_chats()


# --- chats -------------------------------------------------------------------------------------------
async def test_a_new_chat_is_listed_with_its_members_and_its_creator_owns_it(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await new_chat(world, BOB_EMAIL, ALICE_EMAIL)  # one's own address is no one else
    row = store.chat_list().get(chat)
    assert row is not None and row.role is MemberRole.OWNER and row.chat.title.startswith("contract ")
    details = await store.chat_details(chat)
    assert details.chat.id == chat
    assert {m.user_id for m in details.members} == {world.user_id(ALICE_EMAIL), world.user_id(BOB_EMAIL)}


async def test_creating_a_chat_refuses_an_empty_title_and_unknown_people(world: World) -> None:
    store = world.store
    await world.sign_in()
    with pytest.raises(InvalidInput, match=r"^The chat title is empty\.$"):
        await store.create_chat("   ", [BOB_EMAIL])
    with pytest.raises(InvalidInput, match=r"^There is no account for nobody@example\.com\.$"):
        await store.create_chat("Planning", [BOB_EMAIL, " Nobody@Example.com "])


async def test_owners_add_and_remove_people_and_rename_the_chat(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await new_chat(world, BOB_EMAIL)
    with pytest.raises(InvalidInput, match=r"^There is no account for zed@example\.com\.$"):
        await store.add_member(chat, "zed@example.com")
    await store.add_member(chat, CAROL_EMAIL)
    members = {m.user_id for m in (await store.chat_details(chat)).members}
    assert world.user_id(CAROL_EMAIL) in members
    await store.remove_member(chat, world.user_id(CAROL_EMAIL))
    members = {m.user_id for m in (await store.chat_details(chat)).members}
    assert world.user_id(CAROL_EMAIL) not in members
    await store.rename_chat(chat, "  Renamed  ")
    assert (await store.chat_details(chat)).chat.title == "Renamed"
    await eventually(lambda: (row := store.chat_list().get(chat)) is not None and row.chat.title == "Renamed")


async def test_members_who_do_not_own_a_chat_are_refused_in_plain_words(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await world.bobs_chat("hello from bob")
    with pytest.raises(Rejected, match=r"^Only the chat's owners can rename it\.$"):
        await store.rename_chat(chat, "Mine now")
    with pytest.raises(Rejected, match=r"^Only the chat's owners can remove someone else\.$"):
        await store.remove_member(chat, world.user_id(CAROL_EMAIL))
    with pytest.raises(Rejected, match=r"^Only the chat's owners can delete it\.$"):
        await store.delete_chat(chat)
    assert store.chat_list().get(chat) is not None


async def test_leaving_a_chat_takes_it_away(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await world.bobs_chat("stay a while")
    await store.leave_chat(chat)
    assert store.chat_list().get(chat) is None
    with pytest.raises(Rejected, match=r"^This chat does not exist or you are no longer in it\.$"):
        await store.chat_details(chat)


async def test_a_deleted_chat_is_gone_and_a_late_message_to_it_fails_with_the_reason(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await new_chat(world, BOB_EMAIL)
    await store.open_chat(chat)
    await store.delete_chat(chat)
    assert store.chat_list().get(chat) is None
    with pytest.raises(Rejected, match=r"^This chat does not exist or you are no longer in it\.$"):
        await store.chat_details(chat)
    late = await store.send(chat, "anyone here?")  # typed in a window still showing it
    failed = await shown(store, chat, late, DeliveryState.FAILED)
    assert failed.error == "This chat no longer exists."


async def signed_in_again(world: World) -> None:
    """Sign out (the cache goes with it) and in, and load the chat list's first page."""
    await world.store.sign_out()
    await world.sign_in()
    await world.store.refresh_chats()


async def test_the_chat_list_comes_a_page_at_a_time_and_reaches_every_chat(world: World) -> None:
    store = world.store
    await world.sign_in()
    made = [await new_chat(world, BOB_EMAIL) for _ in range(CHAT_PAGE + 2)]
    await signed_in_again(world)
    first = [row.chat.id for row in store.chat_list().rows]
    assert first == made[::-1][:CHAT_PAGE]  # the newest page only
    assert store.has_more_chats()
    for _ in range(100):
        if not store.has_more_chats():
            break
        await store.load_more_chats()
    listed = [row.chat.id for row in store.chat_list().rows]
    assert len(listed) == len(set(listed)) > CHAT_PAGE + 2
    assert set(made) <= set(listed)
    activity = [row.last_activity for row in store.chat_list().rows]
    assert activity == sorted(activity, reverse=True)
    assert not store.has_more_chats() and await store.load_more_chats() == 0


async def test_a_search_finds_a_chat_beyond_the_loaded_pages_and_lists_it(world: World) -> None:
    store = world.store
    await world.sign_in()
    token = uuid.uuid4().hex[:8]
    needle = await new_chat(world, BOB_EMAIL)
    await store.rename_chat(needle, f"Needle {token}")
    for _ in range(CHAT_PAGE + 1):
        await new_chat(world, BOB_EMAIL)
    await signed_in_again(world)
    assert store.chat_list().get(needle) is None  # older than the first page
    found = await store.search_chats(f"  nEEDLE {token} ")
    assert [row.chat.id for row in found] == [needle]
    await eventually(lambda: store.chat_list().get(needle) is not None, what="the match is listed")
    assert await store.search_chats(f"needle {token}x") == []
    assert await store.search_chats("   ") == []


async def test_members_come_a_page_at_a_time_with_their_count(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await new_chat(world, BOB_EMAIL, CAROL_EMAIL)
    first = await store.chat_members(chat, limit=2)
    assert (len(first.members), first.member_count, first.has_more) == (2, 3, True)
    rest = await store.chat_members(chat, after=first.members[-1], limit=2)
    assert (len(rest.members), rest.member_count, rest.has_more) == (1, None, False)
    members = [*first.members, *rest.members]
    assert members[0].user_id == world.user_id(ALICE_EMAIL) and members[0].role is MemberRole.OWNER
    assert {m.user_id for m in members} == {world.user_id(e) for e in (ALICE_EMAIL, BOB_EMAIL, CAROL_EMAIL)}
    assert all(m.display_name for m in members)
    assert (await store.chat_details(chat)).member_count == 3
    with pytest.raises(InvalidInput, match=r"^A page holds at least one member\.$"):
        await store.chat_members(chat, limit=0)
    with pytest.raises(Rejected, match=r"^This chat does not exist or you are no longer in it\.$"):
        await store.chat_members(world.foreign_chat)


# --- messages --------------------------------------------------------------------------------------------
async def test_a_message_shows_at_once_as_pending_then_sent_in_order(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await new_chat(world, BOB_EMAIL)
    timeline = await store.open_chat(chat)
    depths: list[int] = []
    unsubscribe = store.subscribe_status(lambda status: depths.append(status.outbox_depth))
    ids = [await store.send(chat, f"number {n}") for n in range(3)]
    first = timeline.get(ids[0])
    assert first is not None and first.delivery is DeliveryState.PENDING and first.seq is None
    assert first.sender_id == world.user_id(ALICE_EMAIL) and first.content == "number 0"
    listed = store.chat_list().get(chat)  # the list shows what waits to go out, not only what the server has
    assert listed is not None and listed.waiting is not None and listed.waiting.content == "number 2"
    seqs = [(await sent(timeline, message_id)).seq for message_id in ids]
    assert seqs == sorted(seqs)
    await eventually(lambda: store.status.outbox_depth == 0, what="the outbox drained")
    unsubscribe()
    assert max(depths) >= 1 and depths[-1] == 0
    row = store.chat_list().get(chat)
    assert row is not None and row.last_message is not None and row.last_message.id == ids[-1]
    assert row.waiting is None


async def test_text_the_server_would_refuse_is_refused_before_it_is_queued(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await new_chat(world, BOB_EMAIL)
    with pytest.raises(InvalidInput, match=r"^The message is empty\.$"):
        await store.send(chat, " \n\t ")
    with pytest.raises(InvalidInput, match=r"^The message is 8,001 characters long; the limit is 8,000\.$"):
        await store.send(chat, "x" * 8001)
    assert store.status.outbox_depth == 0


async def test_a_message_to_a_chat_one_is_not_in_fails_and_can_be_retried_or_discarded(world: World) -> None:
    store = world.store
    await world.sign_in()
    timeline = await store.open_chat(world.foreign_chat)  # nothing to read there
    assert [m for m in timeline.rows if m.seq is not None] == []
    message_id = await store.send(world.foreign_chat, "let me in")  # accepted: the server decides
    failed = await shown(store, world.foreign_chat, message_id, DeliveryState.FAILED)
    assert failed.error == "You can no longer post in this chat."
    assert store.status.outbox_depth == 1  # it waits for the user
    await store.retry(message_id)
    await shown(store, world.foreign_chat, message_id, DeliveryState.FAILED)
    await store.discard(message_id)
    assert (await store.open_chat(world.foreign_chat)).get(message_id) is None
    await eventually(lambda: store.status.outbox_depth == 0)
    with pytest.raises(InvalidInput, match=r"^That message is no longer waiting to be sent\.$"):
        await store.retry(message_id)
    await store.discard(message_id)  # gone already: nothing to do


async def test_one_edits_and_deletes_ones_own_messages_only(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await world.bobs_chat("bob's words")
    timeline = await store.open_chat(chat)
    bobs = next(m for m in timeline.rows if m.content == "bob's words")
    with pytest.raises(Rejected, match=r"^Only the sender can edit a message, and not after deleting it\.$"):
        await store.edit_message(bobs.id, "alice's words")
    with pytest.raises(Rejected, match=r"^Only the sender can delete a message\.$"):
        await store.delete_message(bobs.id)
    mine = await sent(timeline, await store.send(chat, "tpyo"))
    with pytest.raises(InvalidInput, match=r"^The message is empty\.$"):
        await store.edit_message(mine.id, "  ")
    await store.edit_message(mine.id, "typo")
    await eventually(lambda: (m := timeline.get(mine.id)) is not None and m.content == "typo" and m.edited)
    await store.delete_message(mine.id)
    await eventually(lambda: (m := timeline.get(mine.id)) is not None and m.deleted and m.content == "")
    with pytest.raises(Rejected, match=r"^The server refused the data: a deleted message cannot be edited$"):
        await store.edit_message(mine.id, "back from the dead")


async def test_pages_come_in_ascending_order_and_say_whether_older_ones_exist(world: World) -> None:
    store = world.store
    await world.sign_in()
    chat = await new_chat(world, BOB_EMAIL)
    timeline = await store.open_chat(chat)
    for n in range(3):
        await sent(timeline, await store.send(chat, f"page {n}"))
    with pytest.raises(InvalidInput, match=r"^A page holds at least one message\.$"):
        await store.messages(chat, limit=0)
    async with asyncio.timeout(10):
        # Pages come from the cached window, which the change stream fills (a sent message's own answer
        # only goes to the views): the last one may take a moment.
        while len((await store.messages(chat)).messages) < 3:  # noqa: ASYNC110 - filled by the store's tasks
            await asyncio.sleep(0.02)
    newest = await store.messages(chat, limit=2)
    assert [m.content for m in newest.messages] == ["page 1", "page 2"] and newest.has_more
    first_seq = newest.messages[0].seq
    older = await store.messages(chat, before_seq=first_seq, limit=2)
    assert [m.content for m in older.messages] == ["page 0"] and not older.has_more
    assert (await store.messages(world.foreign_chat)).messages == ()  # row level security: nothing


async def test_someone_elses_message_counts_as_unread_until_read_and_is_announced(world: World) -> None:
    store = world.store
    await world.sign_in()
    heard: list[Message] = []
    store.subscribe_incoming(heard.append)
    chat = await world.bobs_chat("did you read this?")
    await eventually(lambda: (row := store.chat_list().get(chat)) is not None and row.unread_count == 1)
    await eventually(lambda: [m.content for m in heard] == ["did you read this?"], what="announced")
    row = store.chat_list().get(chat)
    assert row is not None and row.last_message is not None
    await store.mark_read(chat, row.chat.last_seq)
    after = store.chat_list().get(chat)
    assert after is not None and after.unread_count == 0 and after.last_read_seq == row.chat.last_seq
    timeline = await store.open_chat(chat)
    await sent(timeline, await store.send(chat, "yes"))
    assert [m.content for m in heard] == ["did you read this?"]  # one's own messages are not announced


async def test_status_listeners_hear_every_change_and_the_status_says_where_things_stand(world: World) -> None:
    store = world.store
    seen: list[StoreStatus] = []
    unsubscribe = store.subscribe_status(seen.append)
    await world.sign_in()
    chat = await new_chat(world, BOB_EMAIL)
    timeline = await store.open_chat(chat)
    await sent(timeline, await store.send(chat, "status"))
    await eventually(lambda: store.status.outbox_depth == 0)
    unsubscribe()
    assert any(status.outbox_depth == 1 for status in seen)
    assert seen[-1] == store.status and store.status.backend_reachable
    snapshot = store.metrics_snapshot()
    assert isinstance(snapshot, dict) and snapshot


# --- jumping to a message, searching ----------------------------------------------------------------------
def seqs(timeline: Timeline) -> list[int]:
    return [m.seq for m in timeline.rows if m.seq is not None]


async def test_opening_a_chat_at_an_old_message_holds_a_window_around_it(world: World) -> None:
    store = world.store
    chat = await world.long_chat(500)
    await world.sign_in()
    with pytest.raises(InvalidInput, match=r"^Messages are numbered from 1\.$"):
        await store.open_at(chat, 0)
    timeline = await store.open_at(chat, 100)
    assert seqs(timeline) == list(range(75, 126))
    assert store.has_newer(chat) and store.has_older(chat)
    assert await store.load_newer(chat) == 50
    assert await store.load_older(chat) == 50
    assert seqs(timeline) == list(range(25, 176))
    assert store.has_newer(chat)
    # Ctrl+End: the newest page, the same timeline object, at the live end again.
    assert await store.open_chat(chat) is timeline
    assert seqs(timeline) == list(range(451, 501))
    assert not store.has_newer(chat)
    assert await store.load_newer(chat) == 0


async def test_a_window_paged_down_to_the_newest_message_is_the_live_end(world: World) -> None:
    store = world.store
    chat = await world.long_chat(300)
    await world.sign_in()
    timeline = await store.open_at(chat, 40)
    pages = 0
    while store.has_newer(chat):
        pages += 1
        assert pages < 10
        await store.load_newer(chat)
    assert seqs(timeline) == list(range(15, 301))
    # Live again: one's own message shows at the bottom at once.
    message_id = await store.send(chat, "back at the end")
    assert timeline.rows[-1].id == message_id
    await sent(timeline, message_id)


async def test_opening_a_chat_near_its_newest_message_is_the_live_end(world: World) -> None:
    store = world.store
    chat = await world.long_chat(300)
    await world.sign_in()
    timeline = await store.open_at(chat, 290)
    assert not store.has_newer(chat)
    assert 290 in seqs(timeline) and seqs(timeline)[-1] == 300
    assert (await store.open_at(world.foreign_chat, 1)).rows == ()  # row level security: nothing


def _token() -> str:
    """A word no other test wrote (letters only: the server's parser keeps it one word)."""
    return "".join(chr(ord("a") + int(digit, 16)) for digit in uuid.uuid4().hex[:10])


async def test_message_search_finds_a_word_by_its_start_in_the_users_chats_only(world: World) -> None:
    store = world.store
    await world.sign_in()
    word = _token()
    chat = await world.bobs_chat(f"The {word.capitalize()} lands at noon")
    found = await store.search_messages(word[:6])
    assert not found.local
    [hit] = [hit for hit in found.hits if hit.chat_id == chat]
    assert [text for text, lit in hit.snippet_parts() if lit] == [word.capitalize()]
    assert hit.seq == 1 and hit.sender_id == world.user_id(BOB_EMAIL)
    assert (await store.search_messages(word, chat_id=chat)).hits[0].id == hit.id
    assert (await store.search_messages(word, chat_id=world.foreign_chat)).hits == ()
    assert (await store.search_messages("  ")).hits == ()
    with pytest.raises(InvalidInput, match=r"^The search text is 501 characters long; the limit is 500\.$"):
        await store.search_messages("x" * 501)
    # Where it leads: the chat opened at the message.
    timeline = await store.open_at(chat, hit.seq)
    assert timeline.get(hit.id) is not None


# --- housekeeping ----------------------------------------------------------------------------------------
async def test_the_cache_says_what_it_takes_signed_out_or_in_and_clearing_leaves_nothing_on_disk(
    world: World,
) -> None:
    store = world.store
    before = await store.cache_usage()  # signed out: still an answer
    assert before.disk_bytes >= 0 and before.keep_days == 30
    await world.sign_in()
    await store.refresh_chats()
    usage = await store.cache_usage()
    assert usage.memory_bytes is not None and usage.memory_bytes > 0
    await store.clear_cache()
    assert (await store.cache_usage()).disk_bytes == 0


async def test_every_session_has_a_chat_list_of_its_own(world: World) -> None:
    """Views attach to ``chat_list()`` again after each sign-in; the previous session's list is let go."""
    store = world.store
    await world.sign_in()
    await store.refresh_chats()
    first = store.chat_list()
    assert first.rows
    await store.sign_out()
    assert store.chat_list() is not first and not store.chat_list().rows
    await world.sign_in()
    await store.refresh_chats()
    assert store.chat_list() is not first and store.chat_list().rows


# --- replies, reactions, read receipts -----------------------------------------------------------------
async def bobs_message(world: World, text: str) -> tuple[ChatId, Timeline, Message]:
    chat = await world.bobs_chat(text)
    timeline = await world.store.open_chat(chat)
    await eventually(lambda: any(m.content == text for m in timeline.rows), what="bob's message is shown")
    message = next(m for m in timeline.rows if m.content == text)
    return chat, timeline, message


async def test_a_reply_carries_its_original_from_the_outbox_to_the_server(world: World) -> None:
    await world.sign_in()
    store = world.store
    chat, timeline, question = await bobs_message(world, "Coffee?")
    answer = await store.send(chat, "Always", reply_to=question.id)
    pending = timeline.get(answer)
    assert pending is not None and pending.reply_to == question.id
    assert (await sent(timeline, answer)).reply_to == question.id
    found = await store.find_message(chat, question.id)
    assert found is not None and found.content == "Coffee?"
    assert await store.find_message(world.foreign_chat, question.id) is None  # RLS: nothing outside
    # A reply to a message of another chat goes out and is refused, saying why.
    other, _, elsewhere = await bobs_message(world, "in another chat")
    wrong = await store.send(chat, "cross-chat", reply_to=elsewhere.id)
    failed = await shown(store, chat, wrong, DeliveryState.FAILED)
    assert failed.error == "The message you replied to is not in this chat."
    assert other != chat


async def test_a_reaction_toggles_on_and_off_and_listeners_hear_it(world: World) -> None:
    await world.sign_in()
    store = world.store
    chat, _timeline, message = await bobs_message(world, "We won!")
    heard: list[tuple[ChatId, dict[MessageId, tuple[str, ...]]]] = []
    unsubscribe = store.subscribe_reactions(
        lambda chat_id, shown: heard.append((chat_id, {k: tuple(r.emoji for r in v) for k, v in shown.items()}))
    )
    try:
        assert await store.toggle_reaction(chat, message.id, "🎉") is True
        assert [(r.emoji, r.count, r.mine) for r in store.reactions(chat)[message.id]] == [("🎉", 1, True)]
        assert (chat, {message.id: ("🎉",)}) in heard
        await eventually(
            lambda: (
                [(r.emoji, r.count, r.mine, r.names) for r in store.reactions(chat).get(message.id, ())]
                == [("🎉", 1, True, ("Alice",) if world.kind == "real" else ("Alice Martin",))]
            ),
            what="delivered, and who reacted is known",
        )
        assert await store.toggle_reaction(chat, message.id, "🎉") is False
        assert message.id not in store.reactions(chat)
        with pytest.raises(
            InvalidInput, match=r"^A reaction is one emoji \(no letters, blanks or control characters\)\.$"
        ):
            await store.toggle_reaction(chat, message.id, "yes")
    finally:
        unsubscribe()


async def test_read_positions_of_an_open_chat_follow_the_members(world: World) -> None:
    await world.sign_in()
    store = world.store
    chat, _timeline, message = await bobs_message(world, "Read me")
    assert message.seq is not None
    await eventually(lambda: store.read_state(chat) is not None, what="the positions are loaded")
    state = store.read_state(chat)
    assert state is not None and state.member_count == 3 and not state.one_to_one
    me = world.user_id(ALICE_EMAIL)
    assert me not in state.readers(message.seq, world.user_id(BOB_EMAIL))
    heard: list[int] = []
    unsubscribe = store.subscribe_reads(lambda s: heard.append(s.positions.get(me, 0)) if s.chat_id == chat else None)
    try:
        await store.mark_read(chat, message.seq)
        await eventually(
            lambda: (s := store.read_state(chat)) is not None and me in s.readers(message.seq or 0, None),
            what="the user's own position moved",
        )
        assert message.seq in heard
    finally:
        unsubscribe()
    assert store.read_state(world.foreign_chat) is None
