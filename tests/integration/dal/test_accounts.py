"""Two accounts on one computer: the second never sees the first one's data, in the app or on disk."""

from __future__ import annotations

import asyncio

import pytest

from desktop_chat.cache.factory import snapshot_dir
from desktop_chat.errors import Rejected
from tests.integration.dal.conftest import ALICE, ALICE_EMAIL, BOB_EMAIL, PASSWORD, LayerFactory

pytestmark = pytest.mark.integration


async def test_after_sign_out_the_next_account_finds_nothing_of_the_first(make_layer: LayerFactory) -> None:
    layer = await make_layer("shared-computer", managed_redis=True)
    store = layer.store
    await store.sign_in(ALICE_EMAIL, PASSWORD)
    secret = await store.create_chat("alice's alone", [])
    await store.open_chat(secret)
    await store.send(secret, "a note to self")
    await store.settle()
    assert await layer.cache.cached_chats(ALICE)  # alice's chats are cached…
    await store.sign_out()
    assert await layer.cache.cached_chats(ALICE) == []  # …and gone with her

    snapshot = snapshot_dir(layer.settings) / "cache.rdb"

    def alice_on_disk() -> bool:
        # No file yet: Redis looked slow (a busy machine) at the sign-out, so the purge and its snapshot
        # wait for the cache's probe to find Redis back.
        return not snapshot.exists() or str(ALICE).encode() in snapshot.read_bytes()

    async with asyncio.timeout(30):  # the snapshot is written at once, in the background
        while await asyncio.to_thread(alice_on_disk):  # noqa: ASYNC110 - a file
            await asyncio.sleep(0.05)

    await store.sign_in(BOB_EMAIL, PASSWORD)
    await store.refresh_chats()
    assert store.chat_list().rows and secret not in {row.chat.id for row in store.chat_list().rows}
    with pytest.raises(Rejected, match=r"^This chat does not exist or you are no longer in it\.$"):
        await store.chat_details(secret)  # not from a cache of alice's either
