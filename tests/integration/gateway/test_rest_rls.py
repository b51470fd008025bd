"""Row level security through REST for the three demo users: PostgreSQL decides, the gateway relays.

A fresh chat of Alice (owner) and Bob (member); Carol is not in it.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from postgrest.exceptions import APIError

from tests.integration.db.conftest import ALICE, BOB, Db
from tests.integration.gateway.conftest import ALICE_EMAIL, BOB_EMAIL, CAROL_EMAIL, ClientFactory, Gateway

pytestmark = pytest.mark.integration


@pytest.fixture
async def chat(db: Db) -> uuid.UUID:
    chat = await db.new_chat(ALICE, BOB, title="rls tests")
    await db.post(ALICE, chat, "from alice")
    await db.post(BOB, chat, "from bob")
    return chat


async def _messages(db: Db, chat: uuid.UUID) -> list[tuple[str, uuid.UUID]]:
    rows = await db.pool.fetch(
        "select content, sender_id from public.chat_messages where session_id = $1 order by seq", chat
    )
    return [(row["content"], row["sender_id"]) for row in rows]


async def test_members_see_the_chat_and_a_non_member_sees_nothing(make_client: ClientFactory, chat: uuid.UUID) -> None:
    for email, visible in ((ALICE_EMAIL, True), (BOB_EMAIL, True), (CAROL_EMAIL, False)):
        client = await make_client(email)
        sessions = await client.table("chat_sessions").select("id").eq("id", str(chat)).execute()
        members = await client.table("chat_members").select("user_id").eq("session_id", str(chat)).execute()
        messages = await client.table("chat_messages").select("content").eq("session_id", str(chat)).execute()
        if visible:
            assert sessions.data == [{"id": str(chat)}], email
            assert sorted(m["user_id"] for m in members.data) == sorted([str(ALICE), str(BOB)]), email
            assert [m["content"] for m in messages.data] == ["from alice", "from bob"], email
        else:
            assert (sessions.data, members.data, messages.data) == ([], [], []), email


async def test_a_new_user_sees_only_their_own_profile(make_client: ClientFactory, unique: str) -> None:
    """Signed up through the gateway, the session works for REST at once, under the user's policies."""
    client = await make_client()
    signed_up = await client.auth.sign_up(
        {
            "email": f"fresh-{unique}@example.com",
            "password": "fresh-pass",
            "options": {"data": {"display_name": "Fresh"}},
        }
    )
    assert signed_up.user is not None
    profiles = await client.table("profiles").select("id, display_name").execute()
    assert profiles.data == [{"id": signed_up.user.id, "display_name": "Fresh"}]
    assert (await client.table("chat_sessions").select("id").execute()).data == []


async def test_a_non_member_cannot_post(make_client: ClientFactory, chat: uuid.UUID, db: Db) -> None:
    carol = await make_client(CAROL_EMAIL)
    with pytest.raises(APIError) as caught:
        await carol.table("chat_messages").insert({"session_id": str(chat), "content": "let me in"}).execute()
    assert caught.value.code == "42501"
    assert "row-level security" in caught.value.message
    assert await _messages(db, chat) == [("from alice", ALICE), ("from bob", BOB)]


async def test_a_member_cannot_post_as_someone_else_but_can_as_themselves(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID, db: Db
) -> None:
    forged = await http.post(
        "/rest/v1/chat_messages",
        json={"session_id": str(chat), "sender_id": str(ALICE), "content": "I am Alice"},
        headers={**gateway.headers(BOB_EMAIL), "Prefer": "return=representation"},
    )
    assert forged.status_code == 403
    assert forged.json()["code"] == "42501"
    bob = await make_client(BOB_EMAIL)
    own = await bob.table("chat_messages").insert({"session_id": str(chat), "content": "really bob"}).execute()
    assert own.data[0]["sender_id"] == str(BOB)
    assert await _messages(db, chat) == [("from alice", ALICE), ("from bob", BOB), ("really bob", BOB)]


async def test_only_the_sender_edits_and_non_members_change_nothing(
    make_client: ClientFactory, chat: uuid.UUID, db: Db
) -> None:
    for email in (BOB_EMAIL, CAROL_EMAIL):
        client = await make_client(email)
        edited = await (
            client.table("chat_messages")
            .update({"content": "hijacked"})
            .eq("session_id", str(chat))
            .eq("sender_id", str(ALICE))
            .execute()
        )
        assert edited.data == [], email
    carol = await make_client(CAROL_EMAIL)
    removed = await carol.table("chat_members").delete().eq("session_id", str(chat)).execute()
    assert removed.data == []
    assert await _messages(db, chat) == [("from alice", ALICE), ("from bob", BOB)]
    assert await db.pool.fetchval("select count(*) from public.chat_members where session_id = $1", chat) == 2


async def test_anonymous_requests_are_refused_with_401(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID
) -> None:
    anonymous = await make_client()
    with pytest.raises(APIError) as caught:
        await anonymous.table("chat_messages").select("*").eq("session_id", str(chat)).execute()
    assert caught.value.code == "42501"
    raw = await http.get("/rest/v1/chat_messages", headers=gateway.headers())
    assert raw.status_code == 401
    assert raw.headers["www-authenticate"] == "Bearer"
    # The apikey alone (no Authorization) is anonymous as well.
    bare = await http.get("/rest/v1/chat_messages", headers={"apikey": gateway.anon_key})
    assert bare.status_code == 401


async def test_the_service_role_bypasses_rls(http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID) -> None:
    response = await http.get(
        "/rest/v1/chat_messages",
        params={"select": "content", "session_id": f"eq.{chat}", "order": "seq"},
        headers={"apikey": gateway.service_role_key},
    )
    assert response.status_code == 200
    assert response.json() == [{"content": "from alice"}, {"content": "from bob"}]
    carol_view = await http.get(
        "/rest/v1/chat_messages",
        params={"select": "content", "session_id": f"eq.{chat}"},
        headers=gateway.headers(CAROL_EMAIL),
    )
    assert carol_view.json() == []
