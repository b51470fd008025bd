"""REST reads through the official client: select, filters, logic trees, order, paging, count, single."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError

from tests.integration.db.conftest import ALICE, BOB, Db
from tests.integration.gateway.conftest import ALICE_EMAIL, ClientFactory, Gateway

pytestmark = pytest.mark.integration

CONTENTS = ["apple pie", "Banana split", "cherry tart", "a,b", "c d", 'say "hi"', "100% sure"]


@dataclass
class History:
    chat: uuid.UUID
    ids: dict[int, str]  # seq -> message id


@pytest.fixture
async def history(db: Db) -> History:
    """A fresh chat of Alice and Bob: seq 1..7 alternating senders, seq 2 edited, seq 6 deleted."""
    chat = await db.new_chat(ALICE, BOB, title="read tests")
    ids = {}
    for index, content in enumerate(CONTENTS):
        row = await db.post(ALICE if index % 2 == 0 else BOB, chat, content)
        ids[row["seq"]] = str(row["id"])
    async with db.as_user(BOB) as conn:
        await conn.execute("update public.chat_messages set content = 'Banana split!' where id = $1", uuid.UUID(ids[2]))
        await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", uuid.UUID(ids[6]))
    return History(chat, ids)


def seqs(rows: list[dict[str, object]]) -> list[object]:
    return [row["seq"] for row in rows]


async def test_select_lists_exactly_the_requested_columns(make_client: ClientFactory, history: History) -> None:
    client = await make_client(ALICE_EMAIL)
    some = await client.table("chat_messages").select("seq, content").eq("session_id", str(history.chat)).execute()
    assert all(set(row) == {"seq", "content"} for row in some.data)
    assert len(some.data) == len(CONTENTS)
    everything = await client.table("chat_messages").select("*").eq("session_id", str(history.chat)).execute()
    assert set(everything.data[0]) == {
        "id",
        "session_id",
        "sender_id",
        "content",
        "created_at",
        "edited_at",
        "deleted_at",
        "seq",
        "rev",
        "search_vector",
        "reply_to",
        "reactions",
    }
    aliased = await client.table("chat_messages").select("number:seq").eq("id", history.ids[1]).execute()
    assert aliased.data == [{"number": 1}]


async def test_rows_render_as_postgresql_renders_them(make_client: ClientFactory, history: History, db: Db) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await client.table("chat_messages").select("*").eq("id", history.ids[2]).execute()
    expected = await db.pool.fetchval(
        "select json_agg(m)::text from public.chat_messages m where id = $1", uuid.UUID(history.ids[2])
    )
    assert response.data == json.loads(expected)
    assert response.data[0]["edited_at"] is not None


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("eq", 3, [3]),
        ("neq", 3, [1, 2, 4, 5, 6, 7]),
        ("gt", 5, [6, 7]),
        ("gte", 5, [5, 6, 7]),
        ("lt", 3, [1, 2]),
        ("lte", 3, [1, 2, 3]),
    ],
)
async def test_comparison_operators(
    make_client: ClientFactory, history: History, operator: str, value: int, expected: list[int]
) -> None:
    client = await make_client(ALICE_EMAIL)
    query = client.table("chat_messages").select("seq").eq("session_id", str(history.chat))
    response = await query.filter("seq", operator, str(value)).order("seq").execute()
    assert seqs(response.data) == expected


async def test_in_like_ilike_is_and_not(make_client: ClientFactory, history: History) -> None:
    client = await make_client(ALICE_EMAIL)

    def base() -> Any:
        return client.table("chat_messages").select("seq").eq("session_id", str(history.chat)).order("seq")

    assert seqs((await base().in_("seq", [2, 4, 99]).execute()).data) == [2, 4]
    # Values with commas, spaces and quotes travel quoted inside in.(...).
    assert seqs((await base().in_("content", ["a,b", "c d", "cherry tart"]).execute()).data) == [3, 4, 5]
    assert seqs((await base().like("content", "%an%").execute()).data) == [2]
    assert seqs((await base().like("content", "*an*").execute()).data) == [2]
    assert seqs((await base().ilike("content", "%BANANA%").execute()).data) == [2]
    assert seqs((await base().like("content", "100%").execute()).data) == [7]
    assert seqs((await base().is_("edited_at", "null").execute()).data) == [1, 3, 4, 5, 6, 7]
    assert seqs((await base().not_.is_("deleted_at", "null").execute()).data) == [6]
    assert seqs((await base().not_.in_("seq", [1, 2, 3]).execute()).data) == [4, 5, 6, 7]
    assert seqs((await base().not_.ilike("content", "%a%").execute()).data) == [5, 6, 7]


async def test_or_with_nested_and_and_negated_trees(make_client: ClientFactory, history: History) -> None:
    client = await make_client(ALICE_EMAIL)

    def base() -> Any:
        return client.table("chat_messages").select("seq").eq("session_id", str(history.chat)).order("seq")

    either = await base().or_("seq.eq.1,and(seq.gt.3,content.like.*d*)").execute()
    assert seqs(either.data) == [1, 5]
    quoted = await base().or_('content.eq."a,b",content.in.("c d",x)').execute()
    assert seqs(quoted.data) == [4, 5]
    neither = await base().not_.or_("seq.lt.3,seq.gt.5").execute()
    assert seqs(neither.data) == [3, 4, 5]
    nested = await base().or_("and(seq.gte.2,seq.lte.3),or(seq.eq.7,not.and(seq.gt.0,seq.lt.7))").execute()
    assert seqs(nested.data) == [2, 3, 7]


async def test_order_by_several_columns_with_nulls_placement(make_client: ClientFactory, history: History) -> None:
    client = await make_client(ALICE_EMAIL)

    def base() -> Any:  # the client's builders accumulate: one per query
        return client.table("chat_messages").select("seq").eq("session_id", str(history.chat))

    nulls_first = await base().order("deleted_at", desc=True, nullsfirst=True).order("seq", desc=True).execute()
    assert seqs(nulls_first.data) == [7, 5, 4, 3, 2, 1, 6]
    nulls_last = await base().order("edited_at", nullsfirst=False).order("seq").execute()
    assert seqs(nulls_last.data) == [2, 1, 3, 4, 5, 6, 7]


async def test_limit_offset_and_range(make_client: ClientFactory, history: History) -> None:
    client = await make_client(ALICE_EMAIL)

    def base() -> Any:
        return client.table("chat_messages").select("seq").eq("session_id", str(history.chat)).order("seq", desc=True)

    assert seqs((await base().limit(2).execute()).data) == [7, 6]
    assert seqs((await base().range(2, 4).execute()).data) == [5, 4, 3]


async def test_exact_count_with_content_range_and_partial_status(
    make_client: ClientFactory, history: History, http: httpx.AsyncClient, gateway: Gateway
) -> None:
    client = await make_client(ALICE_EMAIL)
    for method in ("exact", "planned", "estimated"):
        response = await (
            client.table("chat_messages")
            .select("seq", count=method)
            .eq("session_id", str(history.chat))
            .range(1, 2)
            .execute()
        )
        assert (response.count, len(response.data)) == (len(CONTENTS), 2), method
    raw = await http.get(
        "/rest/v1/chat_messages",
        params={"select": "seq", "session_id": f"eq.{history.chat}", "order": "seq", "offset": "1", "limit": "2"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "count=exact"},
    )
    assert raw.status_code == 206
    assert raw.headers["content-range"] == f"1-2/{len(CONTENTS)}"
    whole = await http.get(
        "/rest/v1/chat_messages",
        params={"select": "seq", "session_id": f"eq.{history.chat}"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "count=exact"},
    )
    assert (whole.status_code, whole.headers["content-range"]) == (200, f"0-6/{len(CONTENTS)}")
    uncounted = await http.get(
        "/rest/v1/chat_messages",
        params={"select": "seq", "session_id": f"eq.{history.chat}", "limit": "3"},
        headers=gateway.headers(ALICE_EMAIL),
    )
    assert (uncounted.status_code, uncounted.headers["content-range"]) == (200, "0-2/*")
    past_the_end = await http.get(
        "/rest/v1/chat_messages",
        params={"select": "seq", "session_id": f"eq.{history.chat}", "offset": "50"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "count=exact"},
    )
    assert (past_the_end.status_code, past_the_end.json()["code"]) == (416, "PGRST103")


async def test_head_counts_without_a_body(
    make_client: ClientFactory, history: History, http: httpx.AsyncClient, gateway: Gateway
) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await (
        client.table("chat_messages")
        .select("id", count="exact", head=True)
        .eq("session_id", str(history.chat))
        .execute()
    )
    assert (response.count, response.data) == (len(CONTENTS), [])
    raw = await http.head(
        "/rest/v1/chat_messages",
        params={"select": "id", "session_id": f"eq.{history.chat}"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "count=exact"},
    )
    assert raw.status_code == 200
    assert raw.content == b""
    assert raw.headers["content-range"] == f"0-6/{len(CONTENTS)}"


async def test_single_and_maybe_single(make_client: ClientFactory, history: History) -> None:
    client = await make_client(ALICE_EMAIL)

    def base() -> Any:
        return client.table("chat_messages").select("seq, content").eq("session_id", str(history.chat))

    one = await base().eq("seq", 1).single().execute()
    assert one.data == {"seq": 1, "content": "apple pie"}
    for seq_filter, rows in (("eq.99", 0), ("lt.3", 2)):
        with pytest.raises(APIError) as caught:
            await (
                client.table("chat_messages")
                .select("seq")
                .eq("session_id", str(history.chat))
                .filter("seq", *seq_filter.split("."))
                .single()
                .execute()
            )
        assert caught.value.code == "PGRST116"
        assert caught.value.details == f"The result contains {rows} rows"
        assert caught.value.message == "JSON object requested, multiple (or no) rows returned"

    maybe = await base().eq("seq", 3).maybe_single().execute()
    assert maybe is not None and maybe.data == {"seq": 3, "content": "cherry tart"}
    none = await (
        client.table("chat_messages")
        .select("seq")
        .eq("session_id", str(history.chat))
        .eq("seq", 99)
        .maybe_single()
        .execute()
    )
    assert none is None


async def test_single_answers_an_object_with_the_pgrst_media_type(
    history: History, http: httpx.AsyncClient, gateway: Gateway
) -> None:
    response = await http.get(
        "/rest/v1/chat_messages",
        params={"select": "seq", "id": f"eq.{history.ids[4]}"},
        headers={**gateway.headers(ALICE_EMAIL), "Accept": "application/vnd.pgrst.object+json"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.pgrst.object+json")
    assert response.json() == {"seq": 4}
    html = await http.get(
        "/rest/v1/chat_messages",
        params={"select": "seq"},
        headers={**gateway.headers(ALICE_EMAIL), "Accept": "text/html"},
    )
    assert (html.status_code, html.json()["code"]) == (406, "PGRST107")


async def test_only_the_public_schema_is_exposed(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway
) -> None:
    client = await make_client(ALICE_EMAIL)
    with pytest.raises(APIError) as caught:
        await client.schema("auth").table("users").select("*").execute()
    assert caught.value.code == "PGRST106"
    assert caught.value.message == "Invalid schema: auth"
    raw = await http.get(
        "/rest/v1/users", headers={**gateway.headers(ALICE_EMAIL), "Accept-Profile": "auth", "Content-Profile": "auth"}
    )
    assert raw.status_code == 406
    # Tables of other schemas are not reachable by name either.
    private = await http.get("/rest/v1/events", headers=gateway.headers(ALICE_EMAIL))
    assert (private.status_code, private.json()["code"]) == (404, "PGRST205")


async def test_a_table_created_after_start_is_found_and_its_new_columns_too(
    make_client: ClientFactory, db: Db, unique: str
) -> None:
    table = f"gw_late_{unique}"
    await db.pool.execute(f"create table public.{table} (id int primary key, label text)")
    try:
        await db.pool.execute(f"insert into public.{table} values (1, 'one')")
        await db.pool.execute(f"grant select on public.{table} to authenticated")
        client = await make_client(ALICE_EMAIL)
        assert (await client.table(table).select("*").execute()).data == [{"id": 1, "label": "one"}]
        await db.pool.execute(f"alter table public.{table} add column extra text default 'new'")
        added = await client.table(table).select("id, extra").eq("extra", "new").execute()
        assert added.data == [{"id": 1, "extra": "new"}]
    finally:
        await db.pool.execute(f"drop table public.{table}")
