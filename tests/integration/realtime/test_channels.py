"""Broadcast, presence, tokens and join errors, with the official async client."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import jwt as pyjwt
import pytest
from realtime import RealtimePostgresChangesListenEvent as Event
from realtime import RealtimeSubscribeStates as State

from tests.integration.realtime.conftest import ALICE, BOB, CAROL, Db, Inbox, Realtime, Statuses, record_id, subscribe

pytestmark = pytest.mark.integration


async def test_broadcast_reaches_the_others_and_the_sender_only_with_self(rt: Realtime) -> None:
    topic = f"room:{uuid.uuid4()}"
    alice, bob, carol = await rt.client(ALICE), await rt.client(BOB), await rt.client(CAROL)
    got = {name: Inbox() for name in ("alice", "bob", "carol")}
    alice_channel = alice.channel(topic).on_broadcast("typing", got["alice"])
    bob_channel = bob.channel(topic, {"config": {"broadcast": {"self": True, "ack": True}}}).on_broadcast(
        "*", got["bob"]
    )
    # No "broadcast" key at all: the client sends "broadcast": null.
    carol_channel = carol.channel(topic, {"config": {"presence": {"key": "", "enabled": False}}})
    carol_channel.on_broadcast("TYPING", got["carol"])
    for channel in (alice_channel, bob_channel, carol_channel):
        await subscribe(channel)

    await alice_channel.send_broadcast("typing", {"user": "alice"})
    assert await got["bob"].next() == {"event": "typing", "payload": {"user": "alice"}}  # the client drops "type"
    assert (await got["carol"].next())["payload"] == {"user": "alice"}  # events match case-insensitively
    await bob_channel.send_broadcast("typing", {"user": "bob"})
    assert (await got["alice"].next())["payload"] == {"user": "bob"}
    assert got["alice"].items == [got["alice"].items[0]]  # alice's own broadcast never came back to her
    assert (await got["bob"].next())["payload"] == {"user": "bob"}  # bob asked for self

    await carol_channel.http_send("typing", {"user": "carol", "via": "rest"})  # POST .../api/broadcast: 202
    assert (await got["alice"].next())["payload"] == {"user": "carol", "via": "rest"}


async def test_presence_join_sync_and_leave(rt: Realtime) -> None:
    topic = f"chat:{uuid.uuid4()}"
    alice, bob, carol = await rt.client(ALICE), await rt.client(BOB), await rt.client(CAROL)
    alice_channel = alice.channel(topic, {"config": {"presence": {"key": str(ALICE), "enabled": True}}})
    await subscribe(alice_channel)
    await alice_channel.track({"user_id": str(ALICE), "status": "online"})

    joins, leaves, syncs = Inbox(), Inbox(), Inbox()
    bob_channel = bob.channel(topic, {"config": {"presence": {"key": str(BOB), "enabled": True}}})
    bob_channel.on_presence_join(joins).on_presence_leave(leaves).on_presence_sync(lambda: syncs(None))
    await subscribe(bob_channel)
    _, _, new = await joins.until(lambda item: item[0] == str(ALICE))  # from the state sent on join
    assert new[0]["status"] == "online" and new[0]["presence_ref"]

    carol_channel = carol.channel(topic, {"config": {"presence": {"key": "", "enabled": True}}})
    await subscribe(carol_channel)
    await carol_channel.track({"user_id": str(CAROL)})
    carol_key, _, _ = await joins.until(lambda item: item[2][0].get("user_id") == str(CAROL))
    uuid.UUID(carol_key)  # an empty key gets a generated one, as Realtime does
    await syncs.next()
    state = bob_channel.presence_state()
    assert sorted(state) == sorted([str(ALICE), carol_key])
    assert all(meta["presence_ref"] for metas in state.values() for meta in metas)

    await carol_channel.untrack()
    await leaves.until(lambda item: item[0] == carol_key)
    await alice.realtime.close()  # a socket that goes away leaves its presences
    _, current, _ = await leaves.until(lambda item: item[0] == str(ALICE))
    assert current == []
    assert bob_channel.presence_state() == {}


async def test_presence_update_replaces_the_meta(rt: Realtime) -> None:
    topic = f"chat:{uuid.uuid4()}"
    alice, bob = await rt.client(ALICE), await rt.client(BOB)
    alice_channel = alice.channel(topic, {"config": {"presence": {"key": "alice", "enabled": True}}})
    syncs = Inbox()
    bob_channel = bob.channel(topic).on_presence_sync(lambda: syncs(bob_channel.presence_state()))
    await subscribe(alice_channel)
    await subscribe(bob_channel)
    await alice_channel.track({"status": "online"})
    await syncs.until(lambda state: [m["status"] for m in state.get("alice", [])] == ["online"])
    await alice_channel.track({"status": "away"})
    await syncs.until(lambda state: [m["status"] for m in state.get("alice", [])] == ["away"])


async def subscribe_and_refresh_before_expiry(rt: Realtime, chat: uuid.UUID, inbox: Inbox) -> tuple[Statuses, str]:
    """Join bob's message channel with a short-lived token and refresh it; returns the statuses and that token.

    ``exp`` is in whole seconds, so a token issued for ``ttl`` lives between ``ttl - 1`` and ``ttl`` seconds,
    and a loaded machine may take longer than that to join and send the new token. The refresh counts as
    made before the expiry only when a later frame's reply (a second join on the same socket: the server
    handles a socket's frames in order) arrived before ``exp``; otherwise it is all done again with a token
    that lives twice as long. A server that ignored the new token still ends the channel at ``exp``.
    """
    for ttl in (2, 4, 8, 16, 32):
        first_token = rt.token(BOB, ttl=ttl)
        first_expiry = pyjwt.decode(first_token, options={"verify_signature": False})["exp"]
        bob = await rt.client(token=first_token)
        channel = bob.channel(f"refresh:{uuid.uuid4()}").on_postgres_changes(
            Event.Insert, inbox, table="chat_messages", filter=f"session_id=eq.{chat}"
        )
        statuses = Statuses()
        await channel.subscribe(statuses)
        status, error = await statuses.next()
        if status == State.SUBSCRIBED:
            await bob.realtime.set_auth(rt.token(BOB, ttl=3600))  # what the client does on TOKEN_REFRESHED
            await subscribe(bob.channel(f"after-refresh:{uuid.uuid4()}"))
            if time.time() < first_expiry:
                return statuses, first_token
        else:
            assert status == State.CHANNEL_ERROR and "Token has expired" in str(error), (status, error)
        await bob.realtime.remove_all_channels()
    pytest.fail("no join and refresh made it before the first token expired")


async def test_a_refreshed_token_keeps_the_channel_working(rt: Realtime, db: Db) -> None:
    chat = await db.new_chat(ALICE, BOB)
    inbox = Inbox()
    statuses, first_token = await subscribe_and_refresh_before_expiry(rt, chat, inbox)
    message = (await db.post(ALICE, chat, "before"))["id"]
    assert record_id(await inbox.next()) == str(message)
    # Past the first token's expiry the channel still delivers: the server follows the new token.
    first_expiry = pyjwt.decode(first_token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, first_expiry + 0.5 - time.time()))
    message = (await db.post(ALICE, chat, "after"))["id"]
    assert record_id(await inbox.next()) == str(message)
    assert [status for status, _ in statuses.items] == [State.SUBSCRIBED]


async def test_a_new_token_for_another_user_changes_what_is_delivered(rt: Realtime, db: Db) -> None:
    alice_chat, carol_chat = await db.new_chat(ALICE), await db.new_chat(CAROL)
    client = await rt.client(ALICE)
    inbox = Inbox()
    await subscribe(client.channel("switch").on_postgres_changes(Event.Insert, inbox, table="chat_messages"))
    await client.realtime.set_auth(rt.token(CAROL))
    hidden = (await db.post(ALICE, alice_chat, "alice's"))["id"]
    shown = (await db.post(CAROL, carol_chat, "carol's"))["id"]
    assert record_id(await inbox.next()) == str(shown)
    assert str(hidden) not in [record_id(p) for p in inbox.items]


async def subscribe_before_expiry(rt: Realtime, topic: str) -> tuple[Statuses, int]:
    """Subscribe as bob with a token that expires a few seconds after the join; returns its lifetime.

    ``exp`` is in whole seconds, so a token issued for ``ttl`` lives between ``ttl - 1`` and ``ttl``
    seconds, and a loaded machine may take longer than that to connect and join: a join refused because
    its token expired first is made again with a token that lives twice as long.
    """
    for ttl in (2, 4, 8, 16, 32):
        client = await rt.client(token=rt.token(BOB, ttl=ttl))
        statuses = Statuses()
        await client.channel(topic).subscribe(statuses)
        status, error = await statuses.next()
        if status == State.SUBSCRIBED:
            return statuses, ttl
        assert status == State.CHANNEL_ERROR and "Token has expired" in str(error), (status, error)
        await client.realtime.remove_all_channels()
    pytest.fail("no join made it before its token expired")


async def test_an_expired_token_ends_the_channel(rt: Realtime) -> None:
    statuses, ttl = await subscribe_before_expiry(rt, "expiring")
    _, error = await statuses.wait_for(State.CHANNEL_ERROR, within=ttl + 10)
    payload = json.loads(str(error))
    assert payload["status"] == "error" and payload["extension"] == "system"
    assert payload["message"].startswith("Token has expired")
    await statuses.wait_for(State.CLOSED)  # phx_close: the server stopped the channel


async def test_a_bad_access_token_ends_the_channel(rt: Realtime) -> None:
    client = await rt.client(BOB)
    statuses = await subscribe(client.channel("forged"))
    forged = pyjwt.encode({"sub": str(BOB), "role": "authenticated", "exp": int(time.time()) + 60}, "x" * 32)
    await client.realtime.set_auth(forged)
    _, error = await statuses.wait_for(State.CHANNEL_ERROR)
    assert "signature verification failed" in json.loads(str(error))["message"].lower()
    await statuses.wait_for(State.CLOSED)


def forged_tokens() -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": str(BOB), "role": "authenticated", "exp": now + 3600}
    return {
        "wrong secret": pyjwt.encode(claims, "not-the-stack-secret-but-long-enough-32"),
        "alg none": pyjwt.encode(claims, key=None, algorithm="none"),
        "expired": "",  # filled in by the test (needs the stack's secret)
        "no exp": "",
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        # Supabase Realtime's words for each (lib/realtime_web/channels/realtime_channel.ex).
        ("wrong secret", "JwtSignatureError: Failed to validate JWT signature"),
        ("alg none", "JwtSignerError: Failed to generate JWT signer, check your JWT secret or JWKS configuration"),
        ("expired", "InvalidJWTToken: Token has expired 1"),  # 10 seconds ago, give or take one
        ("no exp", "InvalidJWTToken: Fields `role` and `exp` are required in JWT"),
        ("garbage", "MalformedJWT: The token provided is not a valid JWT"),
    ],
)
async def test_joins_with_bad_tokens_are_refused(rt: Realtime, kind: str, reason: str) -> None:
    secret = str(rt.stack.info["jwt_secret"])
    token = {
        **forged_tokens(),
        "expired": pyjwt.encode({"sub": str(BOB), "role": "authenticated", "exp": int(time.time()) - 10}, secret),
        "no exp": pyjwt.encode({"sub": str(BOB), "role": "authenticated"}, secret),
    }[kind]
    client = await rt.client(token=token)
    statuses = Statuses()
    await client.channel("bad-token").subscribe(statuses)
    status, error = statuses.items[0]
    assert status == State.CHANNEL_ERROR
    assert json.loads(str(error))["reason"].startswith(reason)


@pytest.mark.parametrize(
    ("binding", "reason"),
    [
        ({"table": "chat_messages", "filter": "nope=eq.1"}, "invalid column for filter 'nope'"),
        ({"table": "chat_messages", "filter": "session_id=eq.not-a-uuid"}, "invalid input syntax for type uuid"),
        ({"table": "chat_messages", "filter": "seq=like.1"}, "unsupported operator 'like'"),
        ({"table": "chat_messages", "filter": "seq=in.1,2"}, "wrapped by parentheses"),
        ({"table": "no_such_table"}, "relation public.no_such_table does not exist"),
        ({"table": "chat_messages", "select": ["nope"]}, "no column 'nope'"),
    ],
)
async def test_bad_bindings_are_refused(rt: Realtime, binding: dict[str, object], reason: str) -> None:
    client = await rt.client(ALICE)
    channel = client.channel("bad-binding").on_postgres_changes(Event.All, lambda _: None, **binding)  # type: ignore[arg-type]
    statuses = Statuses()
    await channel.subscribe(statuses)
    status, error = statuses.items[0]
    assert status == State.CHANNEL_ERROR
    assert reason in json.loads(str(error))["reason"]


async def test_private_channels_need_a_policy_or_a_role_that_bypasses_rls(rt: Realtime) -> None:
    # Private channels are authorized by policies on realtime.messages; none lets a user read "secret".
    user = await rt.client(ALICE)
    statuses = Statuses()
    await user.channel("secret", {"config": {"private": True}}).subscribe(statuses)
    status, error = statuses.items[0]
    assert status == State.CHANNEL_ERROR
    assert "You do not have permissions to read from this Channel topic: secret" in str(error)
    service = await rt.client(token=rt.stack.service_role_key)
    await subscribe(service.channel("secret", {"config": {"private": True}}))


async def test_rest_broadcast_endpoint(rt: Realtime) -> None:
    topic = f"room:{uuid.uuid4()}"
    listener = await rt.client(BOB)
    inbox = Inbox()
    await subscribe(listener.channel(topic).on_broadcast("*", inbox))
    url = f"{rt.stack.api_url}/realtime/v1/api/broadcast"
    message = {"topic": topic, "event": "ping", "payload": {"n": 1}}
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, json={"messages": [message]})).status_code == 401  # no apikey
        forged = {"apikey": rt.stack.anon_key, "Authorization": "Bearer not.a.jwt"}
        assert (await http.post(url, json={"messages": [message]}, headers=forged)).status_code == 401
        headers = {"apikey": rt.stack.anon_key}
        assert (await http.post(url, json={"messages": "all"}, headers=headers)).status_code == 422
        # A private message the token may not write is dropped, and the request still accepted, as
        # Realtime does (test_private_channels.py checks who gets what).
        private = {**message, "private": True}
        assert (await http.post(url, json={"messages": [private]}, headers=headers)).status_code == 202
        assert (await http.post(url, json={"messages": [message]}, headers=headers)).status_code == 202
    assert await inbox.next() == {"event": "ping", "payload": {"n": 1}}
