"""SupabaseBackend over the official client against the stack: validated models, mapped errors, the keyring."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.backend.round_trips import RoundTripCounts
from desktop_chat.backend.session_state import SessionState
from desktop_chat.config import Settings
from desktop_chat.errors import BackendUnavailable, InvalidInput, NotSignedIn, Rejected, Unauthorized
from desktop_chat.models import ChatId, new_chat_id, new_message_id
from desktop_chat.secrets import SecretStore
from devstack.procs import free_port
from tests.conftest import StackHandle
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration

ALICE = uuid.UUID("a11ce000-0000-4000-8000-000000000001")
BOOK_CLUB = ChatId(uuid.UUID("c0000000-0000-4000-8000-00000000b0ca"))


def settings_for(url: str, anon_key: str, home: Path, **extra: object) -> Settings:
    return Settings(
        supabase_url=url,
        supabase_anon_key=SecretStr(anon_key),
        config_dir=home / "config",
        data_dir=home / "data",
        runtime_dir=home / "run",
        cache_dir=home / "cache",
        log_dir=home / "log",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def keyring_backend() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
async def backend(stack: StackHandle, tmp_path: Path, keyring_backend: MemoryKeyring) -> AsyncIterator[SupabaseBackend]:
    client = SupabaseBackend(
        settings_for(stack.api_url, stack.anon_key, tmp_path), SecretStore(tmp_path, backend=keyring_backend)
    )
    await client.start()
    yield client
    await client.close()


async def test_sign_in_keeps_only_the_refresh_token_and_it_rotates(
    backend: SupabaseBackend, keyring_backend: MemoryKeyring
) -> None:
    profile = await backend.sign_in("alice@example.com", "password123")
    assert profile.id == ALICE
    token_entry = ("desktop-chat", backend.auth.secret_name)
    stored = keyring_backend.values[token_entry]
    assert len(stored) < 2560
    assert "." not in stored  # a refresh token, not a JWT and not a whole session
    # Beside it, who signed in (not a secret): what an offline start needs.
    assert "Alice" in keyring_backend.values[("desktop-chat", backend.auth.identity_name)]
    await backend.refresh_session()
    assert keyring_backend.values[token_entry] != stored
    await backend.sign_out()
    assert keyring_backend.values == {}
    with pytest.raises(NotSignedIn):
        await backend.refresh_session()


async def test_errors_come_back_as_our_errors(backend: SupabaseBackend) -> None:
    with pytest.raises(Unauthorized, match="Wrong email or password"):
        await backend.sign_in("alice@example.com", "wrong")
    with pytest.raises(InvalidInput, match="too weak"):
        await backend.sign_up(f"weak-{uuid.uuid4().hex[:6]}@example.com", "123", "Weak")
    with pytest.raises(Rejected, match="already exists"):
        await backend.sign_up("alice@example.com", "password123", "Alice again")
    await backend.sign_in("alice@example.com", "password123")
    with pytest.raises(Rejected, match="not allowed"):  # alice is not in carol's book club (RLS, 42501)
        await backend.insert_message(new_message_id(), BOOK_CLUB, "let me in")


async def test_idempotent_sends_and_the_backfill_query(backend: SupabaseBackend) -> None:
    await backend.sign_in("alice@example.com", "password123")
    chat = new_chat_id()
    await backend.create_chat(chat, "backend test")
    message_id = new_message_id()
    first = await backend.insert_message(message_id, chat, "once")
    again = await backend.insert_message(message_id, chat, "once")
    assert first is not None and first.seq == 1
    assert again is None  # already stored: the retry made no second row
    assert await backend.count_messages(chat) == 1
    edited = await backend.edit_message(message_id, "once, edited")
    assert edited is not None and edited.rev == 2 and edited.edited
    later = await backend.insert_message(new_message_id(), chat, "twice")
    assert later is not None and (later.seq, later.rev) == (2, 3)
    since = await backend.fetch_messages_since(chat, 1)
    assert [(m.seq, m.rev) for m in since] == [(1, 2), (2, 3)]
    page = await backend.fetch_messages(chat, before_seq=2, limit=10)
    assert [m.seq for m in page.messages] == [1]
    assert page.has_more is False


async def test_a_dead_server_is_unavailable_not_a_crash(tmp_path: Path, stack: StackHandle) -> None:
    dead = SupabaseBackend(
        settings_for(f"http://127.0.0.1:{free_port()}", stack.anon_key, tmp_path, request_timeout=2.0),
        SecretStore(tmp_path, backend=MemoryKeyring()),
    )
    await dead.start()
    try:
        with pytest.raises(BackendUnavailable, match="Cannot reach the server"):
            await dead.sign_in("alice@example.com", "password123")
        with pytest.raises(BackendUnavailable):
            await dead.health()
    finally:
        await dead.close()


async def test_the_refresh_loop_renews_a_short_lived_token(tmp_path: Path) -> None:
    from devstack.throwaway import throwaway_stack

    with throwaway_stack(access_token_ttl=3) as (_, info):
        client = SupabaseBackend(
            settings_for(str(info["api_url"]), str(info["anon_key"]), tmp_path),
            SecretStore(tmp_path, backend=MemoryKeyring()),
        )
        await client.start()
        try:
            await client.sign_in("alice@example.com", "password123")
            first = client.session
            assert first is not None
            async with asyncio.timeout(15):
                while client.session is first:  # noqa: ASYNC110 - the refresh runs in the session keeper's task
                    await asyncio.sleep(0.05)
            renewed = client.session
            assert renewed is not None and renewed.access_token != first.access_token
            await asyncio.sleep(3.5)  # past the first token's expiry: calls still work
            assert await client.fetch_recent_chats()
        finally:
            await client.close()


async def test_the_backend_counts_each_round_trip_by_call(backend: SupabaseBackend) -> None:
    start = backend.round_trips.snapshot()
    await backend.sign_in("alice@example.com", "password123")
    signed_in = backend.round_trips.snapshot()
    # The password grant and the profile row: two requests, both seen by the counter.
    assert signed_in.since(start).by_call == {"auth POST token": 1, "rest GET profiles": 1}
    await backend.fetch_chat_list(10)
    await backend.fetch_messages(BOOK_CLUB, None, 5)
    assert backend.round_trips.snapshot().since(signed_in) == RoundTripCounts(
        2, {"rpc chat_list": 1, "rest GET chat_messages": 1}, answered=2
    )


async def test_a_restore_waits_on_no_round_trip_and_confirms_the_token_and_profile_after(
    backend: SupabaseBackend, tmp_path: Path, stack: StackHandle, keyring_backend: MemoryKeyring
) -> None:
    await backend.sign_in("alice@example.com", "password123")
    # The saved identity is older than the profile row (renamed on another computer since).
    backend.auth.remember_identity(backend.auth.require().user_id, "alice@example.com", "Alice (old name)")
    again = SupabaseBackend(
        settings_for(stack.api_url, stack.anon_key, tmp_path), SecretStore(tmp_path, backend=keyring_backend)
    )
    await again.start()
    try:
        start = again.round_trips.snapshot()
        profile = await again.restore_session()
        assert profile is not None and profile.id == ALICE and profile.display_name == "Alice (old name)"
        # The saved identity answers at once; the token goes to the server behind it.
        assert again.round_trips.snapshot().since(start).answered == 0
        assert again.auth.state is SessionState.RESTORING and again.session is None
        confirmed = await again.auth.confirmed()
        assert confirmed is not None and confirmed.user_id == ALICE
        assert again.auth.state is SessionState.CONFIRMED and again.session == confirmed
        async with asyncio.timeout(30):
            while again.profile is None or again.profile.display_name == "Alice (old name)":  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert again.profile.display_name == "Alice"
        assert again.auth.saved_identity() == (ALICE, "alice@example.com", "Alice")
    finally:
        await again.close()
