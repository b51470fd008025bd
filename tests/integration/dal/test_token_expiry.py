"""Access tokens that expire during a session: refreshed before expiry and handed to the joined channels,
nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from desktop_chat.config import Settings
from desktop_chat.dal.api import ConnectionState
from desktop_chat.dal.factory import DataLayer, open_data_layer
from devstack.throwaway import throwaway_stack
from tests.integration.dal.conftest import ALICE_EMAIL, BOB_EMAIL, PASSWORD, eventually
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration

TTL = 4  # seconds: the session is refreshed every ~2 s


@pytest.fixture(scope="module")
def short_lived_stack() -> Iterator[dict[str, Any]]:
    with throwaway_stack(access_token_ttl=TTL) as (_, info):
        yield info


async def open_layer(info: dict[str, Any], home: Path, db: int) -> DataLayer:
    settings = Settings(
        supabase_url=str(info["api_url"]),
        supabase_anon_key=SecretStr(str(info["anon_key"])),
        redis_url=str(info["redis_url"]).rsplit("/", 1)[0] + f"/{db}",
        config_dir=home / "config",
        data_dir=home / "data",
        runtime_dir=home / "run",
        cache_dir=home / "cache",
        log_dir=home / "log",
    )
    return await open_data_layer(settings, keyring_backend=MemoryKeyring())


async def test_messages_flow_across_several_token_lifetimes(short_lived_stack: dict[str, Any], tmp_path: Path) -> None:
    alice = await open_layer(short_lived_stack, tmp_path / "alice", 1)
    bob = await open_layer(short_lived_stack, tmp_path / "bob", 2)
    try:
        for layer, email in ((alice, ALICE_EMAIL), (bob, BOB_EMAIL)):
            await layer.store.sign_in(email, PASSWORD)
            await eventually(lambda layer=layer: layer.store.status.connection is ConnectionState.LIVE)
        chat = await alice.store.create_chat("token expiry", [BOB_EMAIL])
        await eventually(lambda: bob.store.chat_list().get(chat) is not None)
        bob_view = await bob.store.open_chat(chat)
        first_token = alice.backend.session.access_token if alice.backend.session else ""
        sent = []
        for n in range(12):  # about three token lifetimes
            sent.append(await alice.store.send(chat, f"tick {n}"))
            await asyncio.sleep(TTL / 4)
        await eventually(lambda: all(bob_view.get(m) is not None for m in sent), within=30, what="all arrived")
        assert alice.backend.session is not None and alice.backend.session.access_token != first_token
        realtime = alice.store.signed_in.realtime
        # Each new token went to the live socket's channels (Realtime re-checks their rights with it).
        assert realtime is not None and realtime.token_updates >= 2
        assert alice.store.status.connection is ConnectionState.LIVE
        assert [bob_view.get(m).content for m in sent] == [f"tick {n}" for n in range(12)]  # type: ignore[union-attr]
        assert len({m.id for m in bob_view.rows}) == len(bob_view.rows)
        assert alice.store.status.outbox_depth == 0
    finally:
        await alice.close()
        await bob.close()
