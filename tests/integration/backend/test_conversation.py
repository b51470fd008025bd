"""Search, replies, reactions and read receipts through SupabaseBackend: the official client, the gateway (RPC with
the arguments in the body, as PostgREST serves it) and the database's row level security."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.errors import InvalidInput, Rejected
from desktop_chat.models import ChatId, MessageId, ReactionCount, UserId, new_chat_id, new_message_id
from desktop_chat.secrets import SecretStore
from tests.conftest import StackHandle
from tests.integration.backend.test_backend import settings_for
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration

BOB = UserId(uuid.UUID("b0b00000-0000-4000-8000-000000000002"))
CAROL = UserId(uuid.UUID("ca201000-0000-4000-8000-000000000003"))
BOOK_CLUB = ChatId(uuid.UUID("c0000000-0000-4000-8000-00000000b0ca"))


async def signed_in(stack: StackHandle, home: Path, email: str) -> SupabaseBackend:
    client = SupabaseBackend(
        settings_for(stack.api_url, stack.anon_key, home), SecretStore(home, backend=MemoryKeyring())
    )
    await client.start()
    await client.sign_in(email, "password123")
    return client


@pytest.fixture
async def pair(stack: StackHandle, tmp_path: Path) -> AsyncIterator[tuple[SupabaseBackend, SupabaseBackend, ChatId]]:
    """Alice and Bob signed in, in a new chat of their own."""
    alice = await signed_in(stack, tmp_path / "alice", "alice@example.com")
    bob = await signed_in(stack, tmp_path / "bob", "bob@example.com")
    chat = new_chat_id()
    await alice.create_chat(chat, f"conversation {chat}")
    await alice.add_members(chat, [BOB])
    yield alice, bob, chat
    await alice.close()
    await bob.close()


async def test_search_finds_pages_and_marks_matches(pair: tuple[SupabaseBackend, SupabaseBackend, ChatId]) -> None:
    alice, bob, chat = pair
    # A word only this test wrote (the seed's chats are searched too), in letters: hex digits can make a
    # number of its own for the parser ("8e7007c502" is the float 8e7007 and the word c502).
    token = "".join(chr(ord("a") + int(digit, 16)) for digit in uuid.uuid4().hex[:10])
    sent = [await bob.insert_message(new_message_id(), chat, f"{token} number {n} über alles") for n in range(5)]
    assert all(message is not None for message in sent)

    first = await alice.search_messages(token[:6], limit=3)
    assert len(first.hits) == 3 and first.next_cursor is not None
    second = await alice.search_messages(token[:6], cursor=first.next_cursor, limit=3)
    assert second.next_cursor is None
    found = [hit.id for hit in first.hits + second.hits]
    assert found == [m.id for m in reversed(sent) if m is not None]
    hit = first.hits[0]
    assert (hit.chat_id, hit.sender_id, hit.seq) == (chat, BOB, sent[-1].seq if sent[-1] else None)
    assert [text for text, marked in hit.snippet_parts() if marked] == [token]

    assert [h.id for h in (await alice.search_messages(f"{token} uber", chat_id=chat)).hits] == found
    assert (await alice.search_messages("?!", chat_id=chat)).hits == ()
    assert (await alice.search_messages("   ")).hits == ()
    with pytest.raises(InvalidInput, match="limit is 500"):
        await alice.search_messages("x" * 501)


async def test_search_never_finds_other_peoples_chats(stack: StackHandle, tmp_path: Path) -> None:
    carol = await signed_in(stack, tmp_path / "carol", "carol@example.com")
    alice = await signed_in(stack, tmp_path / "alice", "alice@example.com")
    try:
        token = uuid.uuid4().hex[:10]
        assert await carol.insert_message(new_message_id(), BOOK_CLUB, f"{token} for the book club") is not None
        assert (await carol.search_messages(token)).hits != ()
        assert (await alice.search_messages(token)).hits == ()
        assert (await alice.search_messages(token, chat_id=BOOK_CLUB)).hits == ()
    finally:
        await carol.close()
        await alice.close()


async def test_replies_travel_with_the_message_and_stay_in_their_chat(
    pair: tuple[SupabaseBackend, SupabaseBackend, ChatId],
) -> None:
    alice, bob, chat = pair
    original = await alice.insert_message(new_message_id(), chat, "question")
    assert original is not None
    answer_id = new_message_id()
    answer = await bob.insert_message(answer_id, chat, "answer", reply_to=original.id)
    assert answer is not None and answer.reply_to == original.id
    # Idempotent resend through the outbox's path: no second row.
    assert await bob.insert_message(answer_id, chat, "answer", reply_to=original.id) is None
    page = await alice.fetch_messages(chat)
    assert [(m.id, m.reply_to) for m in page.messages][-2:] == [(original.id, None), (answer_id, original.id)]
    assert [m.reply_to for m in await alice.fetch_messages_since(chat, 0)][-1] == original.id

    elsewhere = new_chat_id()
    await alice.create_chat(elsewhere, "elsewhere")
    other = await alice.insert_message(new_message_id(), elsewhere, "in another chat")
    assert other is not None
    with pytest.raises(Rejected, match="not in this chat"):
        await bob.insert_message(new_message_id(), chat, "cross", reply_to=other.id)
    with pytest.raises(Rejected, match="not in this chat"):
        await bob.insert_message(new_message_id(), chat, "to nothing", reply_to=MessageId(uuid.uuid4()))


async def test_reactions_toggle_idempotently_and_show_on_the_message(
    pair: tuple[SupabaseBackend, SupabaseBackend, ChatId],
) -> None:
    alice, bob, chat = pair
    message = await alice.insert_message(new_message_id(), chat, "pizza tonight?")
    assert message is not None and message.seq is not None
    assert await bob.add_reaction(chat, message.id, "🍕") is True
    assert await bob.add_reaction(chat, message.id, "🍕") is False  # the outbox resent it
    assert await alice.add_reaction(chat, message.id, "🍕") is True
    assert await alice.add_reaction(chat, message.id, "👍") is True

    fetched = await alice.fetch_message(message.id)
    assert fetched is not None and fetched.reactions == (
        ReactionCount(emoji="🍕", count=2),
        ReactionCount(emoji="👍", count=1),
    )
    assert fetched.rev is not None and message.rev is not None and fetched.rev > message.rev

    details = await bob.fetch_reactions(chat, message.seq, message.seq)
    assert [(d.emoji, d.count, d.mine) for d in details] == [("🍕", 2, True), ("👍", 1, False)]
    assert [u.display_name for u in details[0].users] == ["Bob", "Alice"]

    assert await alice.remove_reaction(chat, message.id, "👍") is True
    assert await alice.remove_reaction(chat, message.id, "👍") is False
    with pytest.raises(InvalidInput):
        await alice.add_reaction(chat, message.id, "lol")
    since = await bob.fetch_messages_since(chat, fetched.rev)
    assert [(m.id, m.reactions) for m in since] == [(message.id, (ReactionCount(emoji="🍕", count=2),))]


async def test_nobody_reacts_in_a_chat_they_are_not_in(stack: StackHandle, tmp_path: Path) -> None:
    carol = await signed_in(stack, tmp_path / "carol", "carol@example.com")
    alice = await signed_in(stack, tmp_path / "alice", "alice@example.com")
    try:
        message = await carol.insert_message(new_message_id(), BOOK_CLUB, "club only")
        assert message is not None and message.seq is not None
        with pytest.raises(Rejected, match="not allowed"):
            await alice.add_reaction(BOOK_CLUB, message.id, "👍")
        assert await alice.fetch_reactions(BOOK_CLUB, message.seq, message.seq) == []
        assert await alice.fetch_read_receipts(BOOK_CLUB, 1, message.seq) == []
    finally:
        await carol.close()
        await alice.close()


async def test_read_receipts_positions_and_readers(pair: tuple[SupabaseBackend, SupabaseBackend, ChatId]) -> None:
    alice, bob, chat = pair
    first = await alice.insert_message(new_message_id(), chat, "one")
    second = await alice.insert_message(new_message_id(), chat, "two")
    assert first is not None and second is not None and first.seq is not None and second.seq is not None
    assert await bob.mark_read(chat, BOB, first.seq) == first.seq

    receipts = await alice.fetch_read_receipts(chat, first.seq, second.seq)
    assert [(r.seq, r.read_count, r.member_count) for r in receipts] == [(first.seq, 1, 1), (second.seq, 0, 1)]
    positions = await alice.fetch_read_positions(chat)
    assert positions.member_count == 2
    assert positions.read_by(first.seq, first.sender_id) == [BOB]
    assert positions.read_by(second.seq, second.sender_id) == []
    readers = await alice.fetch_message_readers(chat, first.seq)
    assert [(r.user_id, r.display_name) for r in readers] == [(BOB, "Bob")]
