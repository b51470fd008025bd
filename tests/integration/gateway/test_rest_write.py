"""REST writes through the official client: insert, upsert, update, delete, return and count preferences."""

from __future__ import annotations

import uuid

import httpx
import pytest
from postgrest.exceptions import APIError

from tests.integration.db.conftest import ALICE, BOB, Db
from tests.integration.gateway.conftest import ALICE_EMAIL, BOB_EMAIL, ClientFactory, Gateway

pytestmark = pytest.mark.integration


@pytest.fixture
async def chat(db: Db) -> uuid.UUID:
    """A fresh chat owned by Alice with Bob as member."""
    return await db.new_chat(ALICE, BOB, title="write tests")


async def _contents(db: Db, chat: uuid.UUID) -> list[tuple[int, str]]:
    rows = await db.pool.fetch("select seq, content from public.chat_messages where session_id = $1 order by seq", chat)
    return [(row["seq"], row["content"]) for row in rows]


async def test_insert_one_row_returns_it_with_server_defaults(
    make_client: ClientFactory, chat: uuid.UUID, db: Db
) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await client.table("chat_messages").insert({"session_id": str(chat), "content": "first"}).execute()
    [row] = response.data
    assert (row["seq"], row["rev"], row["content"], row["sender_id"]) == (1, 1, "first", str(ALICE))
    assert uuid.UUID(row["id"])
    assert await _contents(db, chat) == [(1, "first")]


async def test_insert_many_keeps_their_order(make_client: ClientFactory, chat: uuid.UUID, db: Db) -> None:
    client = await make_client(BOB_EMAIL)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    rows = [{"id": ids[i], "session_id": str(chat), "content": f"m{i}"} for i in range(5)]
    response = await client.table("chat_messages").insert(rows).execute()
    assert [(r["id"], r["seq"]) for r in response.data] == [(ids[i], i + 1) for i in range(5)]
    assert await _contents(db, chat) == [(i + 1, f"m{i}") for i in range(5)]


async def test_columns_parameter_limits_what_is_inserted(
    http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID, db: Db
) -> None:
    """``columns`` names the keys to take (quoted, any order); other keys of the body are ignored."""
    response = await http.post(
        "/rest/v1/chat_messages",
        params={"columns": '"content","session_id"'},
        json=[{"session_id": str(chat), "content": "kept", "seq": 99, "bogus": "ignored"}],
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "return=representation"},
    )
    assert response.status_code == 201
    assert [(r["seq"], r["content"]) for r in response.json()] == [(1, "kept")]
    unknown = await http.post(
        "/rest/v1/chat_messages",
        params={"columns": '"content","nope"'},
        json=[{"content": "x"}],
        headers=gateway.headers(ALICE_EMAIL),
    )
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "PGRST204"
    assert await _contents(db, chat) == [(1, "kept")]


async def test_missing_keys_are_null_unless_missing_default(
    make_client: ClientFactory, test_schema: None, db: Db, unique: str
) -> None:
    client = await make_client(ALICE_EMAIL)
    rows = [{"name": f"{unique}-a"}, {"name": f"{unique}-b", "qty": 3}, {"name": f"{unique}-c"}]
    # Absent keys become NULL by default, which the NOT NULL column refuses (and nothing is written).
    with pytest.raises(APIError) as caught:
        await client.table("gw_things").insert(rows).execute()
    assert caught.value.code == "23502"
    assert await db.pool.fetchval("select count(*) from public.gw_things where name like $1", f"{unique}-%") == 0
    inserted = await client.table("gw_things").insert(rows, default_to_null=False).execute()
    assert [(r["name"], r["qty"]) for r in inserted.data] == [
        (f"{unique}-a", 7),
        (f"{unique}-b", 3),
        (f"{unique}-c", 7),
    ]


async def test_upsert_ignore_duplicates_keeps_the_first_row(
    make_client: ClientFactory, chat: uuid.UUID, db: Db
) -> None:
    """The outbox's idempotent send: a retried insert of the same id is no second row and no new seq."""
    client = await make_client(ALICE_EMAIL)
    message = {"id": str(uuid.uuid4()), "session_id": str(chat), "content": "once"}
    first = (
        await client.table("chat_messages")
        .upsert(message, on_conflict="id,session_id", ignore_duplicates=True)
        .execute()
    )
    assert [r["seq"] for r in first.data] == [1]
    again = await (
        client.table("chat_messages")
        .upsert({**message, "content": "twice"}, on_conflict="id,session_id", ignore_duplicates=True)
        .execute()
    )
    assert again.data == []
    await client.table("chat_messages").insert({"session_id": str(chat), "content": "next"}).execute()
    assert await _contents(db, chat) == [(1, "once"), (2, "next")]


async def test_upsert_merge_duplicates_updates_the_existing_row(
    make_client: ClientFactory, test_schema: None, db: Db, unique: str
) -> None:
    client = await make_client(ALICE_EMAIL)
    created = await client.table("gw_things").insert({"name": f"{unique}-m", "qty": 1, "note": "keep"}).execute()
    [row] = created.data
    by_name = await client.table("gw_things").upsert({"name": f"{unique}-m", "qty": 5}, on_conflict="name").execute()
    assert [(r["id"], r["qty"], r["note"]) for r in by_name.data] == [(row["id"], 5, "keep")]
    # Without on_conflict the primary key decides.
    by_key = await client.table("gw_things").upsert({"id": row["id"], "name": f"{unique}-m", "qty": 9}).execute()
    assert [(r["id"], r["qty"]) for r in by_key.data] == [(row["id"], 9)]
    assert await db.pool.fetchval("select count(*) from public.gw_things where name = $1", f"{unique}-m") == 1


async def test_update_changes_the_filtered_rows_only(make_client: ClientFactory, chat: uuid.UUID, db: Db) -> None:
    first = await db.post(ALICE, chat, "typo")
    await db.post(ALICE, chat, "untouched")
    client = await make_client(ALICE_EMAIL)
    response = await client.table("chat_messages").update({"content": "fixed"}).eq("id", str(first["id"])).execute()
    [row] = response.data
    assert (row["content"], row["edited_at"] is not None, row["rev"]) == ("fixed", True, 3)
    # The app deletes softly by letting the server date the deletion.
    deleted = await client.table("chat_messages").update({"deleted_at": "now"}).eq("id", str(first["id"])).execute()
    assert (deleted.data[0]["content"], deleted.data[0]["deleted_at"] is not None) == ("", True)
    assert await _contents(db, chat) == [(1, ""), (2, "untouched")]


async def test_delete_returns_the_deleted_rows(make_client: ClientFactory, chat: uuid.UUID, db: Db) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await client.table("chat_members").delete().eq("session_id", str(chat)).eq("user_id", str(BOB)).execute()
    assert [(r["user_id"], r["role"]) for r in response.data] == [(str(BOB), "member")]
    members = await db.pool.fetch("select user_id from public.chat_members where session_id = $1", chat)
    assert [m["user_id"] for m in members] == [ALICE]


async def test_return_minimal_answers_without_a_body(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID, db: Db
) -> None:
    client = await make_client(ALICE_EMAIL)
    inserted = await (
        client.table("chat_messages")
        .insert({"session_id": str(chat), "content": "quiet"}, returning="minimal")
        .execute()
    )
    assert inserted.data == []
    raw = await http.post(
        "/rest/v1/chat_messages",
        json={"session_id": str(chat), "content": "quieter"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "return=minimal"},
    )
    assert (raw.status_code, raw.content) == (201, b"")
    updated = await http.patch(
        "/rest/v1/chat_messages",
        params={"session_id": f"eq.{chat}", "seq": "eq.1"},
        json={"content": "loud"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "return=minimal"},
    )
    assert (updated.status_code, updated.content) == (204, b"")
    removed = await http.request(
        "DELETE",
        "/rest/v1/chat_members",
        params={"session_id": f"eq.{chat}", "user_id": f"eq.{BOB}"},
        json={},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "return=minimal"},
    )
    assert (removed.status_code, removed.content) == (204, b"")
    assert await _contents(db, chat) == [(1, "loud"), (2, "quieter")]


async def test_write_counts_come_back_in_content_range(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, chat: uuid.UUID
) -> None:
    client = await make_client(ALICE_EMAIL)
    rows = [{"session_id": str(chat), "content": f"c{i}"} for i in range(3)]
    inserted = await client.table("chat_messages").insert(rows, count="exact").execute()
    assert (inserted.count, len(inserted.data)) == (3, 3)
    raw = await http.patch(
        "/rest/v1/chat_messages",
        params={"session_id": f"eq.{chat}", "seq": "lte.2"},
        json={"content": "same"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "return=representation,count=exact"},
    )
    assert (raw.status_code, raw.headers["content-range"]) == (200, "0-1/2")
    assert "count=exact" in raw.headers["preference-applied"]
