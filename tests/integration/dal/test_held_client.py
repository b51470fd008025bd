"""The server client held back for the first paint (``open_data_layer(hold_client=True)``, as the app opens
it): a start from a saved session shows the cached chats without building the client (and importing its
libraries) or sending anything; the UI's ``first_frame_painted`` lets the confirmation go; a read the cache
cannot answer (a cold cache) and a sign-in do not wait for the paint, a background call does.

The hold's own limit is set out of reach, so that a slow machine cannot let the client go by itself."""

from __future__ import annotations

import asyncio
import gc

import pytest

from desktop_chat.backend import client as backend_client
from desktop_chat.backend.session_state import SessionState
from desktop_chat.dal.api import ConnectionState
from desktop_chat.errors import Bug
from tests.conftest import StackHandle
from tests.integration.dal.conftest import ALICE, ALICE_EMAIL, PASSWORD, LayerFactory, eventually
from tests.integration.dal.test_restore import _first_run
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration

HANG_GUARD = 120.0  # seconds: only a call that waits for the paint that never comes runs into it


@pytest.fixture(autouse=True)
def unlimited_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_client, "CLIENT_HOLD_LIMIT", 3600.0)


async def test_the_held_client_is_built_after_the_first_frame(make_layer: LayerFactory, stack: StackHandle) -> None:
    listed, same = await _first_run(make_layer, MemoryKeyring(), stack.redis_url.rsplit("/", 1)[0] + "/11")
    again = await make_layer("alice-again", hold_client=True, **same)
    profile = await again.store.restore_session()
    assert profile is not None and profile.id == ALICE
    await again.store.refresh_chats()
    assert [row.chat.id for row in again.store.chat_list().rows] == listed
    for _ in range(20):  # the confirmation task, and whatever the restore started, get their turns
        await asyncio.sleep(0.01)
    assert again.backend.auth.state is SessionState.RESTORING
    assert again.backend.round_trips.snapshot().total == 0  # not even the token went out
    with pytest.raises(Bug):
        _ = again.backend.client  # not built
    frozen_before_the_client = gc.get_freeze_count()
    assert frozen_before_the_client > 0  # the session holds what it lives on (chat_store.hold_long_lived)
    again.store.first_frame_painted()
    await eventually(lambda: again.store.status.connection is ConnectionState.LIVE, within=30, what="live")
    assert again.backend.auth.state is SessionState.CONFIRMED
    assert again.backend.client is not None
    # The client built after the session opened joins the frozen objects: full collections skip it too.
    assert gc.get_freeze_count() > frozen_before_the_client


async def test_a_cache_miss_lets_the_held_client_go(make_layer: LayerFactory, stack: StackHandle) -> None:
    listed, same = await _first_run(make_layer, MemoryKeyring(), stack.redis_url.rsplit("/", 1)[0] + "/10")
    # The same computer with its cache gone (another Redis database): the list has to come from Supabase,
    # so nothing is painted before it, and no frame will say "painted".
    cold = {**same, "redis_url": stack.redis_url.rsplit("/", 1)[0] + "/9"}
    again = await make_layer("alice-again", hold_client=True, realtime=False, **cold)
    assert await again.store.restore_session() is not None
    await asyncio.wait_for(again.store.refresh_chats(), HANG_GUARD)
    assert {row.chat.id for row in again.store.chat_list().rows} == set(listed)
    assert again.backend.auth.state is SessionState.CONFIRMED


async def test_a_background_call_does_not_let_the_held_client_go(make_layer: LayerFactory, stack: StackHandle) -> None:
    # "Load more" below a cached list (the list asks once whether there is more) is not what the first
    # frame shows: it waits for the confirmation, which waits for the paint.
    _listed, same = await _first_run(make_layer, MemoryKeyring(), stack.redis_url.rsplit("/", 1)[0] + "/8")
    again = await make_layer("alice-again", hold_client=True, realtime=False, **same)
    assert await again.store.restore_session() is not None
    await again.store.refresh_chats()
    more = asyncio.ensure_future(again.store.load_more_chats())
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert not more.done()
    assert again.backend.round_trips.snapshot().total == 0
    again.store.first_frame_painted()
    await asyncio.wait_for(more, HANG_GUARD)
    assert again.backend.auth.state is SessionState.CONFIRMED


async def test_a_sign_in_lets_the_held_client_go(make_layer: LayerFactory) -> None:
    # A data layer opened for another server from the sign-in window (painted long before): nothing else
    # will say "painted" for it.
    layer = await make_layer("alice", hold_client=True, realtime=False)
    profile = await asyncio.wait_for(layer.store.sign_in(ALICE_EMAIL, PASSWORD), HANG_GUARD)
    assert profile.id == ALICE
    assert layer.backend.auth.state is SessionState.CONFIRMED
