"""Private channels: Realtime Authorization and Broadcast from the database, as an attacker sees them.

Raw Phoenix frames (exact replies, and what a client that ignores the official library could try) and
the official client. Topics are the schema's (supabase/migrations/*_realtime_private_topics.sql):
``chat:<id>`` (the database's events, presence), ``chat:<id>:typing`` (members' typing) and
``user:<id>`` (one user's notices). Absence is shown by order, never by waiting: what must not arrive
is caused before a control message that must, and one socket gets its frames in order.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import websockets
from realtime import RealtimeSubscribeStates as State
from realtime.message import ServerMessageAdapter
from websockets.asyncio.client import ClientConnection

from tests.conftest import StackHandle
from tests.integration.realtime.conftest import ALICE, BOB, CAROL, Db, Inbox, Realtime, Statuses, subscribe

pytestmark = pytest.mark.integration

TIMEOUT = 10.0
PRIVATE = {"config": {"private": True}}


def refusal(topic: str) -> str:
    return f"Unauthorized: You do not have permissions to read from this Channel topic: {topic}"


class Wire:
    """A raw V1 socket: frames out, frames in (each checked against the official client's models)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ref = 0

    async def send(self, topic: str, event: str, payload: Any, *, join_ref: str | None = None) -> str:
        self.ref += 1
        await self.ws.send(
            json.dumps({"topic": topic, "event": event, "payload": payload, "ref": str(self.ref), "join_ref": join_ref})
        )
        return str(self.ref)

    async def receive(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        assert isinstance(raw, str)
        ServerMessageAdapter.validate_json(raw)
        frame: dict[str, Any] = json.loads(raw)
        return frame

    async def join(self, topic: str, token: str, **config: Any) -> dict[str, Any]:
        """Join ``realtime:<topic>`` privately; the reply frame."""
        config = {"broadcast": None, "presence": {"key": "", "enabled": False}, "private": True} | config
        ref = await self.send(f"realtime:{topic}", "phx_join", {"config": config, "access_token": token}, join_ref="j")
        frame = await self.receive()
        assert (frame["event"], frame["ref"]) == ("phx_reply", ref), frame
        return frame

    async def heartbeat(self) -> list[dict[str, Any]]:
        """Every frame that arrives before the reply to a heartbeat sent now."""
        ref = await self.send("phoenix", "heartbeat", {})
        frames = []
        while True:
            frame = await self.receive()
            if frame["topic"] == "phoenix" and frame["ref"] == ref:
                return frames
            frames.append(frame)


@pytest.fixture
async def wire(stack: StackHandle) -> AsyncIterator[Callable[[], Any]]:
    sockets: list[ClientConnection] = []
    url = f"ws://{stack.config.host}:{stack.config.api_port}/realtime/v1/websocket?apikey={stack.anon_key}&vsn=1.0.0"

    async def open_socket() -> Wire:
        ws = await websockets.connect(url)
        sockets.append(ws)
        return Wire(ws)

    try:
        yield open_socket
    finally:
        for ws in sockets:
            await ws.close()


async def send_from_database(db: Db, topic: str, event: str, payload: dict[str, Any], *, private: bool) -> None:
    await db.pool.execute("select realtime.send($1::jsonb, $2, $3, $4)", json.dumps(payload), event, topic, private)


async def settled(db: Db, wire: Callable[[], Any], stack: StackHandle) -> None:
    """Wait until every broadcast committed so far has been relayed (the relay keeps commit order), so
    that a socket joined from now on gets none of them (a new chat's "member" events, say)."""
    raw = await wire()
    topic = f"settle:{uuid.uuid4()}"
    assert (await raw.join(topic, stack.anon_key, private=False))["payload"]["status"] == "ok"
    await send_from_database(db, topic, "settled", {}, private=False)
    assert (await raw.receive())["payload"]["event"] == "settled"


async def test_a_member_hears_the_database_and_a_non_member_is_refused_on_the_wire(
    wire: Callable[[], Any], rt: Realtime, db: Db, stack: StackHandle
) -> None:
    chat = await db.new_chat(ALICE, BOB)
    await settled(db, wire, stack)
    bob, carol = await wire(), await wire()
    reply = await bob.join(f"chat:{chat}", rt.token(BOB))
    assert reply["payload"] == {"status": "ok", "response": {"postgres_changes": []}}
    for topic in (f"chat:{chat}", f"chat:{chat}:typing", f"user:{BOB}"):
        reply = await carol.join(topic, rt.token(CAROL))
        assert reply == {
            "topic": f"realtime:{topic}",
            "event": "phx_reply",
            "payload": {"status": "error", "response": {"reason": refusal(topic)}},
            "ref": reply["ref"],
        }
    # Not joined, carol cannot send on the topic either.
    ref = await carol.send(
        f"realtime:chat:{chat}", "broadcast", {"type": "broadcast", "event": "message", "payload": {}}
    )
    assert (await carol.receive())["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert ref

    message = await db.post(ALICE, chat, "for members")
    frame = await bob.receive()
    assert frame["topic"] == f"realtime:chat:{chat}" and frame["event"] == "broadcast" and frame["ref"] is None
    payload = frame["payload"]
    assert (payload["type"], payload["event"]) == ("broadcast", "message")
    assert payload["meta"] == {"id": payload["payload"]["id"]}  # the realtime.messages row's id
    assert payload["payload"]["record"]["id"] == str(message["id"])
    assert payload["payload"]["record"]["content"] == "for members"
    assert await carol.heartbeat() == []


async def test_a_member_gets_inserts_edits_and_deletes_in_order_with_the_official_client(rt: Realtime, db: Db) -> None:
    chat = await db.new_chat(ALICE, BOB)
    bob = await rt.client(BOB)
    inbox = Inbox()
    await subscribe(bob.channel(f"chat:{chat}", PRIVATE).on_broadcast("message", inbox))
    message = await db.post(ALICE, chat, "v1")
    async with db.as_user(ALICE) as conn:
        await conn.execute("update public.chat_messages set content = 'v2' where id = $1", message["id"])
    async with db.as_user(ALICE) as conn:
        await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", message["id"])
    seen = [(await inbox.next())["payload"] for _ in range(3)]
    assert [(p["operation"], p["record"]["content"], p["record"]["rev"]) for p in seen] == [
        ("INSERT", "v1", message["rev"]),
        ("UPDATE", "v2", message["rev"] + 1),
        ("UPDATE", "", message["rev"] + 2),
    ]
    assert all(p["old_record"] is None and p["table"] == "chat_messages" for p in seen)


async def test_a_non_member_hears_nothing_private_even_on_public_channels_of_the_same_names(
    rt: Realtime, db: Db
) -> None:
    chat = await db.new_chat(ALICE, BOB)
    alice, bob, carol = await rt.client(ALICE), await rt.client(BOB), await rt.client(CAROL)
    bob_typing, alice_typing, alice_presence = Inbox(), Inbox(), Inbox()
    bob_messages = Inbox()
    presence = {"config": {"private": True, "presence": {"key": str(ALICE), "enabled": True}}}
    alice_chat = alice.channel(f"chat:{chat}", presence).on_presence_join(alice_presence)
    await subscribe(alice_chat)
    await subscribe(alice.channel(f"chat:{chat}:typing", PRIVATE).on_broadcast("typing", alice_typing))
    bob_chat = bob.channel(
        f"chat:{chat}", {"config": {"private": True, "presence": {"key": str(BOB), "enabled": True}}}
    )
    await subscribe(bob_chat.on_broadcast("message", bob_messages))
    bob_typing_channel = bob.channel(f"chat:{chat}:typing", PRIVATE).on_broadcast("typing", bob_typing)
    await subscribe(bob_typing_channel)

    # Carol listens on public channels named like the private topics, with everything switched on.
    carol_heard = Inbox()
    carol_channels = []
    for topic in (f"chat:{chat}", f"chat:{chat}:typing"):
        channel = carol.channel(topic, {"config": {"presence": {"key": str(CAROL), "enabled": True}}})
        channel.on_broadcast("*", carol_heard).on_presence_join(lambda *args: carol_heard(("presence", args)))
        await subscribe(channel)
        carol_channels.append(channel)

    # The members talk: a message (from the database), typing, presence.
    await db.post(ALICE, chat, "secret")
    await bob_typing_channel.send_broadcast("typing", {"user": str(BOB)})
    await bob_chat.track({"user_id": str(BOB)})
    assert (await bob_messages.next())["payload"]["record"]["content"] == "secret"
    assert (await alice_typing.next())["payload"] == {"user": str(BOB)}
    await alice_presence.until(lambda item: item[0] == str(BOB))

    # A control broadcast to carol's public topic, from the database, after all of that.
    await send_from_database(db, f"chat:{chat}", "control", {"n": 1}, private=False)
    first = await carol_heard.next()
    assert first["event"] == "control" and first["payload"]["n"] == 1
    assert carol_heard.items == [first]
    assert all(channel.presence_state() == {} for channel in carol_channels)


async def test_non_members_cannot_broadcast_into_a_chat_and_members_not_as_the_database(
    wire: Callable[[], Any], rt: Realtime, db: Db, stack: StackHandle
) -> None:
    chat = await db.new_chat(ALICE, BOB)
    await settled(db, wire, stack)
    alice, bob = await wire(), await wire()
    assert (await alice.join(f"chat:{chat}", rt.token(ALICE)))["payload"]["status"] == "ok"
    assert (await alice.join(f"chat:{chat}:typing", rt.token(ALICE)))["payload"]["status"] == "ok"
    # Bob is a member, but only the database speaks on chat:<id>: his forged "message" is dropped,
    # without the ack his channel asked for.
    joined = await bob.join(f"chat:{chat}", rt.token(BOB), broadcast={"ack": True, "self": True})
    assert joined["payload"]["status"] == "ok"
    forged = {"type": "broadcast", "event": "message", "payload": {"record": {"content": "fake", "rev": 999}}}
    await bob.send(f"realtime:chat:{chat}", "broadcast", forged, join_ref="j")
    assert await bob.heartbeat() == []

    # Carol posts over HTTP into the topics (private, with her token): accepted, and dropped.
    url = f"{stack.api_url}/realtime/v1/api/broadcast"
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {rt.token(CAROL)}"}
    messages = [
        {"topic": f"chat:{chat}", "event": "message", "payload": {"fake": True}, "private": True},
        {"topic": f"chat:{chat}:typing", "event": "typing", "payload": {"user": str(CAROL)}, "private": True},
    ]
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, json={"messages": messages}, headers=headers)).status_code == 202
        # Bob may post typing over HTTP as well as on his socket.
        bobs = {"apikey": stack.anon_key, "Authorization": f"Bearer {rt.token(BOB)}"}
        typing = {"topic": f"chat:{chat}:typing", "event": "typing", "payload": {"user": str(BOB)}, "private": True}
        assert (await http.post(url, json={"messages": [typing]}, headers=bobs)).status_code == 202

    frame = await alice.receive()
    assert frame["topic"] == f"realtime:chat:{chat}:typing" and frame["payload"]["payload"] == {"user": str(BOB)}
    await db.post(ALICE, chat, "real")
    frame = await alice.receive()
    assert frame["payload"]["event"] == "message" and frame["payload"]["payload"]["record"]["content"] == "real"


async def test_typing_and_presence_between_members(
    wire: Callable[[], Any], rt: Realtime, db: Db, stack: StackHandle
) -> None:
    chat = await db.new_chat(ALICE, BOB)
    await settled(db, wire, stack)
    alice, bob = await wire(), await wire()
    with_presence = {"presence": {"key": str(ALICE), "enabled": True}}
    assert (await alice.join(f"chat:{chat}", rt.token(ALICE), **with_presence))["payload"]["status"] == "ok"
    assert (await alice.receive())["event"] == "presence_state"
    # The typing topic has no presence: joined (broadcast read), no presence_state, a track refused
    # with Realtime's bare error.
    assert (await bob.join(f"chat:{chat}:typing", rt.token(BOB), **with_presence))["payload"]["status"] == "ok"
    ref = await bob.send(
        f"realtime:chat:{chat}:typing", "presence", {"type": "presence", "event": "track", "payload": {}}, join_ref="j"
    )
    assert await bob.receive() == {
        "topic": f"realtime:chat:{chat}:typing",
        "event": "phx_reply",
        "payload": {"status": "error", "response": {}},
        "ref": ref,
    }
    # On chat:<id> bob tracks presence (turned on by the track itself) and alice sees him.
    assert (await bob.join(f"chat:{chat}", rt.token(BOB)))["payload"]["status"] == "ok"
    ref = await bob.send(
        f"realtime:chat:{chat}", "presence", {"type": "presence", "event": "track", "payload": {"on": 1}}, join_ref="j"
    )
    replies = [await bob.receive(), await bob.receive()]
    assert {"event": "phx_reply", "ref": ref, "payload": {"status": "ok", "response": {}}}.items() <= replies[0].items()
    assert replies[1]["event"] == "presence_state"
    diff = await alice.receive()
    assert diff["event"] == "presence_diff"
    (key,) = diff["payload"]["joins"]
    assert diff["payload"]["joins"][key]["metas"][0]["on"] == 1


async def test_user_topics_are_private_to_their_user(rt: Realtime, db: Db) -> None:
    bob, carol = await rt.client(BOB), await rt.client(CAROL)
    notices = Inbox()
    await subscribe(bob.channel(f"user:{BOB}", PRIVATE).on_broadcast("*", notices))
    statuses = Statuses()
    await carol.channel(f"user:{BOB}", PRIVATE).subscribe(statuses)
    status, error = statuses.items[0]
    assert status == State.CHANNEL_ERROR and json.loads(str(error))["reason"] == refusal(f"user:{BOB}")

    chat = await db.new_chat(ALICE, BOB)  # bob is added: his topic says so
    added = await notices.until(lambda item: item["event"] == "member")
    assert added["payload"]["operation"] == "INSERT" and added["payload"]["record"]["session_id"] == str(chat)
    message = await db.post(ALICE, chat, "a notice for bob")
    activity = await notices.until(lambda item: item["event"] == "activity")
    assert activity["payload"]["message_id"] == str(message["id"])
    assert activity["payload"]["preview"] == "a notice for bob"


async def test_a_removed_member_hears_until_the_next_token_then_is_shut_out(rt: Realtime, db: Db) -> None:
    chat = await db.new_chat(ALICE, BOB)
    bob = await rt.client(BOB)
    heard, own = Inbox(), Inbox()
    channel = bob.channel(f"chat:{chat}", PRIVATE).on_broadcast("*", heard)
    statuses = await subscribe(channel)
    await subscribe(bob.channel(f"user:{BOB}", PRIVATE).on_broadcast("*", own))

    async with db.as_user(ALICE) as conn:
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, BOB)
    removed = await heard.until(lambda item: item["event"] == "member")
    assert removed["payload"]["operation"] == "DELETE" and removed["payload"]["old_record"]["user_id"] == str(BOB)
    assert (await own.until(lambda item: item["event"] == "member"))["payload"]["operation"] == "DELETE"

    # The window, as on Supabase: a join was authorized once, so until the channel's token changes (the
    # client's refresh, ~every hour) or expires, the removed member still hears the chat. The app
    # leaves the topic when its user topic says "removed"; a client that does not is shut out at the
    # next token.
    await db.post(ALICE, chat, "said after bob left")
    late = await heard.until(lambda item: item["event"] == "message")
    assert late["payload"]["record"]["content"] == "said after bob left"

    await bob.realtime.set_auth(rt.token(BOB))  # what the client does on TOKEN_REFRESHED
    _, error = await statuses.wait_for(State.CHANNEL_ERROR)
    assert json.loads(str(error)) == {
        "channel": f"chat:{chat}",
        "extension": "system",
        "message": f"You do not have permissions to read from this Channel topic: chat:{chat}",
        "status": "error",
    }
    await statuses.wait_for(State.CLOSED)
    await db.post(ALICE, chat, "bob must not hear this")
    await send_from_database(db, f"user:{BOB}", "control", {}, private=True)
    await own.until(lambda item: item["event"] == "control")
    assert [item["event"] for item in heard.items].count("message") == 1

    again = Statuses()
    await bob.channel(f"chat:{chat}", PRIVATE).subscribe(again)
    assert again.items[0][0] == State.CHANNEL_ERROR
    assert json.loads(str(again.items[0][1]))["reason"] == refusal(f"chat:{chat}")


async def test_forged_expired_and_foreign_tokens_are_refused(wire: Callable[[], Any], rt: Realtime, db: Db) -> None:
    chat = await db.new_chat(ALICE, BOB)
    topic = f"chat:{chat}"
    secret = str(rt.stack.info["jwt_secret"])
    now = int(time.time())
    bob_claims = {"sub": str(BOB), "role": "authenticated", "aud": "authenticated"}
    cases = {
        # Bob's claims under another key.
        pyjwt.encode(bob_claims | {"exp": now + 600}, "not-the-project-secret-but-32-chars!"): (
            "JwtSignatureError: Failed to validate JWT signature"
        ),
        pyjwt.encode(bob_claims | {"exp": now + 600}, key=None, algorithm="none"): (
            "JwtSignerError: Failed to generate JWT signer, check your JWT secret or JWKS configuration"
        ),
        pyjwt.encode(bob_claims | {"exp": now - 60}, secret): "InvalidJWTToken: Token has expired ",
        # Properly signed, but a role the API may not become, and the anon key: no.
        pyjwt.encode(bob_claims | {"exp": now + 600, "role": "postgres"}, secret): refusal(topic),
        rt.stack.anon_key: refusal(topic),
    }
    raw = await wire()
    for token, reason in cases.items():
        reply = await raw.join(topic, token)
        assert reply["payload"]["status"] == "error"
        assert reply["payload"]["response"]["reason"].startswith(reason), reply
    # The official client gets the same answers.
    client = await rt.client(token=rt.token(BOB, ttl=-30))
    statuses = Statuses()
    await client.channel(topic, PRIVATE).subscribe(statuses)
    assert statuses.items[0][0] == State.CHANNEL_ERROR
    assert "Token has expired" in json.loads(str(statuses.items[0][1]))["reason"]


async def test_private_and_public_database_broadcasts_keep_to_their_side(
    rt: Realtime, db: Db, stack: StackHandle
) -> None:
    topic = f"lobby:{uuid.uuid4()}"
    service, user = await rt.client(token=stack.service_role_key), await rt.client(BOB)
    private_inbox, public_inbox = Inbox(), Inbox()
    await subscribe(service.channel(topic, PRIVATE).on_broadcast("*", private_inbox))
    await subscribe(user.channel(topic).on_broadcast("*", public_inbox))
    await send_from_database(db, topic, "secret", {"n": 1}, private=True)
    await send_from_database(db, topic, "open", {"n": 2}, private=False)
    await send_from_database(db, topic, "secret", {"n": 3}, private=True)
    await send_from_database(db, topic, "open", {"n": 4}, private=False)
    assert [
        (item["event"], item["payload"]["n"]) for item in [await private_inbox.next(), await private_inbox.next()]
    ] == [
        ("secret", 1),
        ("secret", 3),
    ]
    opened = [await public_inbox.next(), await public_inbox.next()]
    assert [(item["event"], item["payload"]["n"]) for item in opened] == [("open", 2), ("open", 4)]
    assert opened[0]["meta"]["id"] == opened[0]["payload"]["id"]
    assert private_inbox.items[2:] == []


@pytest.fixture
async def presence_only_topics(db: Db) -> AsyncIterator[str]:
    """A prefix whose topics authenticated users may read for presence only (a policy of this test's)."""
    prefix = f"presence-only-{uuid.uuid4().hex[:8]}:"
    name = f"test {prefix}"
    await db.pool.execute(
        f'create policy "{name}" on realtime.messages for select to authenticated'
        f" using (topic like '{prefix}%' and extension = 'presence')"
    )
    try:
        yield prefix
    finally:
        await db.pool.execute(f'drop policy "{name}" on realtime.messages')


async def test_a_channel_without_the_broadcast_read_right_gets_no_broadcasts(
    wire: Callable[[], Any], rt: Realtime, db: Db, presence_only_topics: str
) -> None:
    topic = presence_only_topics + "room"
    raw = await wire()
    # Presence read alone lets a channel join, as Realtime has it (either read right will do) ...
    reply = await raw.join(topic, rt.token(BOB), presence={"key": "bob", "enabled": True})
    assert reply["payload"]["status"] == "ok"
    assert await raw.receive() == {"topic": f"realtime:{topic}", "event": "presence_state", "payload": {}, "ref": None}
    # ... without broadcasts: neither the database's nor the service role's over HTTP.
    await send_from_database(db, topic, "hidden", {}, private=True)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{rt.stack.api_url}/realtime/v1/api/broadcast",
            json={"messages": [{"topic": topic, "event": "hidden", "payload": {}, "private": True}]},
            headers={"apikey": rt.stack.anon_key, "Authorization": f"Bearer {rt.stack.service_role_key}"},
        )
        assert response.status_code == 202
    # A second private channel on the socket, on a topic bob reads, as the control.
    chat = await db.new_chat(ALICE, BOB)
    assert (await raw.join(f"user:{BOB}", rt.token(BOB)))["payload"]["status"] == "ok"
    await db.post(ALICE, chat)
    frames = []
    while not frames or frames[-1]["payload"]["event"] != "activity":
        frames.append(await raw.receive())
    assert all(frame["topic"] == f"realtime:user:{BOB}" for frame in frames), frames
