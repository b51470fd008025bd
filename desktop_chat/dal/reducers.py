"""Pure reducers: current state + a change → the new state. No I/O, no clock.

Every change can arrive more than once and out of band (the HTTP answer of a send, its realtime echo,
a back-fill page), so each reducer is idempotent and keeps the newest version by ``rev``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from desktop_chat.models import (
    Chat,
    ChatMember,
    ChatSummary,
    DeliveryState,
    Message,
    MessageId,
    UserId,
)


def newer_message(current: Message | None, incoming: Message) -> Message | None:
    """The version of a message to keep, or None when ``incoming`` adds nothing.

    A confirmed row (with ``rev``) beats any pending or failed local row of the same id; between two
    confirmed rows the higher ``rev`` wins. A local row never replaces a confirmed one.
    """
    if current is None:
        return incoming
    if incoming.rev is None:
        # Local state (pending / failed / retrying) only replaces local state.
        return incoming if current.rev is None and incoming != current else None
    if current.rev is not None and incoming.rev < current.rev:
        return None
    if incoming == current:
        return None
    if incoming.delivery is not DeliveryState.SENT:
        incoming = incoming.model_copy(update={"delivery": DeliveryState.SENT, "error": None})
    return incoming


def merge_messages(current: Sequence[Message], incoming: Iterable[Message], cap: int) -> list[Message]:
    """Confirmed messages of one chat, merged by id (newest rev wins), ascending by seq, newest ``cap`` kept.

    This is the cached "newest N" list: local pending rows never go into it.
    """
    by_id: dict[MessageId, Message] = {message.id: message for message in current if message.seq is not None}
    for message in incoming:
        if message.seq is None:
            continue
        kept = newer_message(by_id.get(message.id), message)
        if kept is not None:
            by_id[message.id] = kept
    ordered = sorted(by_id.values(), key=lambda message: message.seq or 0)
    return ordered[-cap:] if cap > 0 else []


def max_rev(messages: Iterable[Message]) -> int:
    return max((message.rev or 0 for message in messages), default=0)


def summary_with_message(summary: ChatSummary, message: Message, me: UserId) -> ChatSummary:
    """The recent-chats row after a confirmed message of its chat was inserted or changed."""
    if message.seq is None:
        return summary
    chat = summary.chat
    last = summary.last_message
    updates: dict[str, object] = {}
    if last is None or message.seq > (last.seq or 0):
        # New to this row: beyond the newest message it knew. (Not beyond chat.last_seq: the chat
        # row's update, which moves that counter, is pushed before the message itself.)
        updates["last_message"] = message
        chat_updates: dict[str, object] = {"last_seq": max(chat.last_seq, message.seq)}
        if message.rev is not None:
            chat_updates["last_rev"] = max(chat.last_rev, message.rev)
        if chat.last_message_at is None or message.created_at > chat.last_message_at:
            chat_updates["last_message_at"] = message.created_at
        updates["chat"] = chat.model_copy(update=chat_updates)
        if message.sender_id != me and message.seq > summary.last_read_seq:
            # As the server counts: every message above the read position but one's own (deleted or not).
            updates["unread_count"] = summary.unread_count + 1
    elif last.id == message.id:
        kept = newer_message(last, message)
        if kept is not None:
            updates["last_message"] = kept
    if message.rev is not None and message.rev > chat.last_rev and "chat" not in updates:
        updates["chat"] = chat.model_copy(update={"last_rev": message.rev})
    return summary.model_copy(update=updates) if updates else summary


def summary_with_chat(summary: ChatSummary, chat: Chat) -> ChatSummary:
    """The recent-chats row after its chat row changed (renamed, counters moved)."""
    current = summary.chat
    if chat.last_rev < current.last_rev or chat.last_seq < current.last_seq:
        # An older image of the row (a push that raced a newer message): keep the newer counters.
        chat = chat.model_copy(
            update={
                "last_rev": max(chat.last_rev, current.last_rev),
                "last_seq": max(chat.last_seq, current.last_seq),
                "last_message_at": current.last_message_at or chat.last_message_at,
            }
        )
    if chat == current:
        return summary
    return summary.model_copy(update={"chat": chat})


def summary_from_server(current: ChatSummary | None, server: ChatSummary) -> ChatSummary | None:
    """The row to show when a fresh read of the chat list says ``server`` and the view shows ``current``;
    None when the view's row stays (the same, or newer: changes applied while the read was on its way).

    The server's row is the truth for everything it was read after: its messages (``last_rev``), its
    title and deletion (``updated_at``, which moves with them and not with new messages) and the read
    position, which only moves forward.
    """
    if current is None:
        return server
    if server.chat.last_rev < current.chat.last_rev:
        return None
    chat = server.chat
    if chat.updated_at < current.chat.updated_at:
        chat = chat.model_copy(
            update={
                "title": current.chat.title,
                "deleted_at": current.chat.deleted_at,
                "updated_at": current.chat.updated_at,
            }
        )
    updates: dict[str, object] = {"chat": chat}
    if server.last_read_seq < current.last_read_seq:
        updates["last_read_seq"] = current.last_read_seq
        updates["unread_count"] = min(server.unread_count, current.unread_count)
    row = server.model_copy(update=updates)
    return None if row == current else row


def summary_read_up_to(summary: ChatSummary, seq: int, unread_after: int) -> ChatSummary:
    """The row after the user read up to ``seq``; ``unread_after`` is the count still unread."""
    if seq <= summary.last_read_seq:
        return summary
    return summary.model_copy(update={"last_read_seq": seq, "unread_count": max(unread_after, 0)})


def unread_after(messages: Iterable[Message], read_seq: int, me: UserId) -> int:
    """Unread messages among ``messages`` (from others, beyond ``read_seq``; deleted ones count, as the
    server's ``unread = last_seq - last_read_seq - own messages`` counts them)."""
    return sum(
        1 for message in messages if message.seq is not None and message.seq > read_seq and message.sender_id != me
    )


def summary_after_own_membership(
    row: ChatSummary, member: ChatMember, loaded: tuple[Sequence[Message], int | None] | None, me: UserId
) -> ChatSummary | None:
    """The chat's row after our own membership row changed (role, read position); None when only a reload
    of the chat list can tell the unread count.

    ``loaded``: the chat's open timeline (its rows and the oldest ``seq`` it loaded), if it is open.
    """
    updates: dict[str, object] = {}
    if member.role != row.role:
        updates["role"] = member.role
    if member.last_read_seq > row.last_read_seq:
        if member.last_read_seq >= row.chat.last_seq:
            unread = 0
        elif loaded is not None and loaded[1] is not None and loaded[1] <= member.last_read_seq + 1:
            unread = unread_after(loaded[0], member.last_read_seq, me)
        else:
            return None
        updates["last_read_seq"] = member.last_read_seq
        updates["unread_count"] = unread
    return row.model_copy(update=updates) if updates else row


def details_changed(before: Chat, after: Chat) -> bool:
    """Whether a chat change touched what the chat's details show (title, deletion), not just counters."""
    return before.title != after.title or before.deleted_at != after.deleted_at
