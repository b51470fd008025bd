"""Pydantic models and typed ids; no I/O.

Every value that comes from the network or the cache is validated into one of these models before the
rest of the app sees it (``strict`` where the wire format is JSON-native, frozen everywhere so a model
can be shared between the cache, the views and the outbox without copies).
"""

from desktop_chat.models.changes import (
    ChangeEvent,
    ChatRemoved,
    ChatUpserted,
    MemberRemoved,
    MemberUpserted,
    MessageUpserted,
    ProfileUpserted,
)
from desktop_chat.models.entities import (
    Chat,
    ChatChanges,
    ChatDetails,
    ChatListKey,
    ChatMember,
    ChatSummary,
    DeliveryState,
    MemberPage,
    MemberRole,
    Message,
    MessagePage,
    Profile,
)
from desktop_chat.models.ids import ChatId, MessageId, UserId, new_chat_id, new_message_id
from desktop_chat.models.limits import (
    MAX_DISPLAY_NAME_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_TITLE_CHARS,
    validate_display_name,
    validate_message_text,
    validate_title,
)

__all__ = [
    "MAX_DISPLAY_NAME_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_TITLE_CHARS",
    "ChangeEvent",
    "Chat",
    "ChatChanges",
    "ChatDetails",
    "ChatId",
    "ChatListKey",
    "ChatMember",
    "ChatRemoved",
    "ChatSummary",
    "ChatUpserted",
    "DeliveryState",
    "MemberPage",
    "MemberRemoved",
    "MemberRole",
    "MemberUpserted",
    "Message",
    "MessageId",
    "MessagePage",
    "MessageUpserted",
    "Profile",
    "ProfileUpserted",
    "UserId",
    "new_chat_id",
    "new_message_id",
    "validate_display_name",
    "validate_message_text",
    "validate_title",
]
