"""``ChatAdmin``: create, rename and delete chats; add, remove and leave members."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.cache import KeyKind, TieredCache
from desktop_chat.dal.calls import BackendCalls
from desktop_chat.dal.live import LiveSync
from desktop_chat.errors import InvalidInput, Rejected
from desktop_chat.models import ChatId, UserId, new_chat_id, validate_title


class ChatAdmin:
    """One signed-in user's chat administration. Row level security decides who may do what; the
    answers are turned into plain sentences here."""

    def __init__(
        self, user: UserId, backend: SupabaseBackend, cache: TieredCache, calls: BackendCalls, live: LiveSync
    ) -> None:
        self._user = user
        self._backend = backend
        self._cache = cache
        self._calls = calls
        self._live = live

    async def create_chat(self, title: str, member_emails: Sequence[str] = ()) -> ChatId:
        clean_title = validate_title(title)
        members: list[UserId] = []
        for email in dict.fromkeys(e.strip().lower() for e in member_emails if e.strip()):
            profile = await self._calls.call("find_profile", partial(self._backend.find_profile_by_email, email))
            if profile is None:
                raise InvalidInput(f"There is no account for {email}.")
            if profile.id != self._user:
                members.append(profile.id)
        chat_id = new_chat_id()
        await self._calls.call("create_chat", lambda: self._backend.create_chat(chat_id, clean_title))
        if members:
            await self._calls.call("add_members", lambda: self._backend.add_members(chat_id, members))
        await self._after_membership_change(chat_id)
        return chat_id

    async def rename_chat(self, chat_id: ChatId, title: str) -> None:
        clean = validate_title(title)
        updated = await self._calls.call("rename_chat", lambda: self._backend.update_chat(chat_id, {"title": clean}))
        if updated is None:
            raise Rejected("Only the chat's owners can rename it.")
        await self._after_membership_change(chat_id)

    async def delete_chat(self, chat_id: ChatId) -> None:
        updated = await self._calls.call(
            "delete_chat", lambda: self._backend.update_chat(chat_id, {"deleted_at": "now"})
        )
        if updated is None:
            raise Rejected("Only the chat's owners can delete it.")
        await self._live.drop_chat(chat_id)

    async def add_member(self, chat_id: ChatId, email: str) -> None:
        profile = await self._calls.call("find_profile", lambda: self._backend.find_profile_by_email(email))
        if profile is None:
            raise InvalidInput(f"There is no account for {email.strip()}.")
        await self._calls.call("add_members", lambda: self._backend.add_members(chat_id, [profile.id]))
        await self._after_membership_change(chat_id)

    async def remove_member(self, chat_id: ChatId, user_id: UserId) -> None:
        removed = await self._calls.call("remove_member", lambda: self._backend.remove_member(chat_id, user_id))
        if not removed:
            raise Rejected("Only the chat's owners can remove someone else.")
        if user_id == self._user:
            await self._live.drop_chat(chat_id)
        else:
            await self._after_membership_change(chat_id)

    async def leave_chat(self, chat_id: ChatId) -> None:
        await self.remove_member(chat_id, self._user)

    async def _after_membership_change(self, chat_id: ChatId) -> None:
        await self._cache.invalidate(self._user, KeyKind.CHAT, chat_id)
        # Straight from Supabase: a cached or in-flight load may predate the change.
        await self._live.reload_chats()
