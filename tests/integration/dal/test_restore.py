"""A start with a saved session: the saved identity and the cached chats first, the server's word after.

Restored and online: the chat list comes from the cache before the token was answered, and the link goes
Live once it is. Restored and revoked (the token was revoked meanwhile): the store ends the session by
itself, tells the UI why, and keeps the outbox and the cache. (Restored and offline:
``test_offline_start.py``.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from desktop_chat.backend.session_state import SessionState
from desktop_chat.dal.api import ConnectionState
from desktop_chat.errors import NotSignedIn
from desktop_chat.models import ChatId
from devstack.proxy import LoopbackProxy
from tests.conftest import StackHandle
from tests.integration.dal.conftest import ALICE, ALICE_EMAIL, PASSWORD, LayerFactory, eventually
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration


async def _first_run(
    make_layer: LayerFactory, keyring: MemoryKeyring, redis_url: str, **overrides: Any
) -> tuple[list[ChatId], dict[str, Any]]:
    """Sign in (which saves the session and warms the cache), then quit: the chat list as shown, and the
    settings the next start shares with this one (the same computer: keyring, config, data, Redis)."""
    first = await make_layer("alice", keyring=keyring, redis_url=redis_url, realtime=False, **overrides)
    await first.store.sign_in(ALICE_EMAIL, PASSWORD)
    await first.store.settle()
    listed = [row.chat.id for row in first.store.chat_list().rows]
    await first.close()
    same = {"config_dir": first.settings.config_dir, "data_dir": first.settings.data_dir, **overrides}
    return listed, {"keyring": keyring, "redis_url": redis_url, **same}


async def test_restored_online_the_cached_list_shows_before_the_token_is_answered(
    make_layer: LayerFactory, stack: StackHandle, proxy: LoopbackProxy
) -> None:
    keyring = MemoryKeyring()
    redis_url = stack.redis_url.rsplit("/", 1)[0] + "/12"
    through = {"supabase_url": f"http://127.0.0.1:{proxy.port}"}  # the saved session is the proxy's address's
    listed, same = await _first_run(make_layer, keyring, redis_url, **through)
    again = await make_layer("alice-again", **same)
    proxy.hold()  # the server's answers wait until the list has been shown
    profile = await again.store.restore_session()
    assert profile is not None and profile.id == ALICE
    await again.store.refresh_chats()
    assert [row.chat.id for row in again.store.chat_list().rows] == listed
    assert again.backend.auth.state is SessionState.RESTORING
    assert again.backend.round_trips.snapshot().answered == 0
    assert again.store.status.connection is ConnectionState.CONNECTING
    await eventually(lambda: proxy.held > 0, what="the token's answer on its way")
    # A call made now waits for the confirmation: sent before it, it would go out as anon, and row level
    # security would answer "no chats".
    asked = asyncio.ensure_future(again.backend.fetch_chat_list(len(listed)))
    proxy.release()
    assert {row.chat.id for row in await asked} == set(listed)
    await eventually(lambda: again.store.status.connection is ConnectionState.LIVE, within=30, what="live")
    assert again.backend.auth.state is SessionState.CONFIRMED


async def test_restored_but_revoked_the_session_ends_by_itself_and_keeps_outbox_and_cache(
    make_layer: LayerFactory, stack: StackHandle, proxy: LoopbackProxy
) -> None:
    keyring = MemoryKeyring()
    redis_url = stack.redis_url.rsplit("/", 1)[0] + "/13"
    through = {"supabase_url": f"http://127.0.0.1:{proxy.port}"}
    listed, same = await _first_run(make_layer, keyring, redis_url, **through)
    conn = await asyncpg.connect(stack.db_url)
    try:  # signed out everywhere meanwhile (e.g. "sign out all devices" on another computer)
        await conn.execute("delete from auth.refresh_tokens where user_id = $1", ALICE)
    finally:
        await conn.close()
    again = await make_layer("alice-again", **same)
    store = again.store
    ended: list[str] = []
    store.subscribe_session_ended(ended.append)
    proxy.hold()  # the refusal waits until the saved chats are shown and a message is typed
    profile = await store.restore_session()
    assert profile is not None and profile.id == ALICE
    await store.refresh_chats()
    assert [row.chat.id for row in store.chat_list().rows] == listed
    chat = listed[0]
    await store.open_chat(chat)
    said = await store.send(chat, "typed before the server said no")
    assert ended == [] and again.backend.auth.state is SessionState.RESTORING
    proxy.release()
    await eventually(lambda: ended != [], within=30, what="the session ended")
    assert "sign in again" in ended[0]
    await eventually(lambda: store.current_user is None, what="signed out")
    with pytest.raises(NotSignedIn):
        await store.recent_chats()
    assert again.backend.auth.state is SessionState.SIGNED_OUT
    assert again.backend.auth.saved_identity() is None  # the refused token is gone: the next start asks
    # Nothing the user had was purged: the unsent message and the cached list stay for the next sign-in.
    assert await again.outbox.get(said) is not None
    cached = await again.cache.get_recent(ALICE)
    # (The same chats; their order may differ where rows tie, as the list written through sorts them itself.)
    assert cached is not None and sorted(row.chat.id for row in cached.value) == sorted(listed)
    # Signing in again sends it.
    await store.sign_in(ALICE_EMAIL, PASSWORD)
    await eventually(lambda: store.status.outbox_depth == 0, within=30, what="the message went out")
