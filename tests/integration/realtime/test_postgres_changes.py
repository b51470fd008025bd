"""postgres_changes through the gateway: capture from the WAL, filters, events, RLS per subscriber."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

import pytest
from realtime import RealtimePostgresChangesListenEvent as Event

from tests.integration.realtime.conftest import ALICE, BOB, CAROL, Db, Inbox, Realtime, record_id, subscribe

pytestmark = pytest.mark.integration

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")
COMMIT_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def edit(db: Db, user: uuid.UUID, message: uuid.UUID, **values: Any) -> None:
    async with db.as_user(user) as conn:
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(values, start=2))
        status = await conn.execute(
            f"update public.chat_messages set {assignments} where id = $1", message, *values.values()
        )
        assert status == "UPDATE 1"


async def test_a_member_gets_insert_edit_and_soft_delete_in_commit_order(rt: Realtime, db: Db) -> None:
    chat = await db.new_chat(ALICE, BOB)
    bob = await rt.client(BOB)
    inbox = Inbox()
    channel = bob.channel(f"chat:{chat}").on_postgres_changes(
        Event.All, inbox, table="chat_messages", schema="public", filter=f"session_id=eq.{chat}"
    )
    await subscribe(channel)
    binding_id = channel.postgres_changes_callbacks[0].id

    # Another client (alice, through RLS) ...
    first = (await db.post(ALICE, chat, "hello"))["id"]
    await edit(db, ALICE, first, content="hello, edited")
    await edit(db, ALICE, first, deleted_at=dt.datetime.now(dt.UTC))
    # ... and plain SQL as the superuser, bypassing every policy.
    second = uuid.uuid4()
    await db.pool.execute(
        "insert into public.chat_messages (id, session_id, sender_id, content) values ($1, $2, $3, 'from psql')",
        second,
        chat,
        ALICE,
    )
    await db.pool.execute("update public.chat_messages set content = 'psql edit' where id = $1", second)

    received = [await inbox.next() for _ in range(5)]
    kinds = [(p["data"]["type"], record_id(p)) for p in received]
    assert kinds == [
        ("INSERT", str(first)),
        ("UPDATE", str(first)),
        ("UPDATE", str(first)),
        ("INSERT", str(second)),
        ("UPDATE", str(second)),
    ]
    revs = [p["data"]["record"]["rev"] for p in received]
    assert revs == sorted(revs) and len(set(revs)) == 5  # every change took the chat's next rev, in order

    insert, edited, deleted = received[:3]
    assert insert["ids"] == [binding_id]
    data = insert["data"]
    assert (data["schema"], data["table"], data["errors"]) == ("public", "chat_messages", None)
    assert COMMIT_TIMESTAMP.match(data["commit_timestamp"])
    assert [(c["name"], c["type"]) for c in data["columns"]] == [
        ("id", "uuid"),
        ("session_id", "uuid"),
        ("sender_id", "uuid"),
        ("content", "text"),
        ("created_at", "timestamptz"),
        ("edited_at", "timestamptz"),
        ("deleted_at", "timestamptz"),
        ("seq", "int8"),
        ("rev", "int8"),
        # wal2json, with the options Supabase Realtime passes, sends generated columns too.
        ("search_vector", "tsvector"),
        ("reply_to", "uuid"),
        ("reactions", "jsonb"),
    ]
    record = data["record"]
    assert record["session_id"] == str(chat) and record["sender_id"] == str(ALICE)
    assert record["content"] == "hello" and record["seq"] == 1 and isinstance(record["seq"], int)
    assert ISO_UTC.match(record["created_at"]) and record["edited_at"] is None
    assert "old_record" not in data

    assert edited["data"]["record"]["content"] == "hello, edited"
    assert ISO_UTC.match(edited["data"]["record"]["edited_at"])
    # Replica identity: the primary key, (id, session_id) (a message id is unique within its chat).
    assert edited["data"]["old_record"] == {"id": str(first), "session_id": str(chat)}
    assert deleted["data"]["record"]["content"] == "" and ISO_UTC.match(deleted["data"]["record"]["deleted_at"])


async def test_non_members_get_nothing(rt: Realtime, db: Db) -> None:
    private_chat = await db.new_chat(ALICE, BOB)
    carols_chat = await db.new_chat(CAROL)
    bob, carol = await rt.client(BOB), await rt.client(CAROL)
    bob_inbox, carol_inbox = Inbox(), Inbox()
    for client, inbox in ((bob, bob_inbox), (carol, carol_inbox)):
        await subscribe(client.channel("messages").on_postgres_changes(Event.Insert, inbox, table="chat_messages"))

    secret = (await db.post(ALICE, private_chat, "not for carol"))["id"]
    assert record_id(await bob_inbox.next()) == str(secret)  # the change was delivered to someone
    control = (await db.post(CAROL, carols_chat, "carol's own"))["id"]
    # Carol's socket gets changes in commit order: had the first one reached her, it would come first.
    assert record_id(await carol_inbox.next()) == str(control)
    assert carol_inbox.items == [carol_inbox.items[0]]


async def test_the_same_user_on_several_sockets_and_the_service_role(rt: Realtime, db: Db) -> None:
    chat = await db.new_chat(ALICE, BOB)
    inboxes = [Inbox() for _ in range(3)]
    clients = [await rt.client(BOB), await rt.client(BOB), await rt.client(token=rt.stack.service_role_key)]
    for client, inbox in zip(clients, inboxes, strict=True):
        await subscribe(
            client.channel("m").on_postgres_changes(
                Event.Insert, inbox, table="chat_messages", filter=f"session_id=eq.{chat}"
            )
        )
    message = (await db.post(ALICE, chat, "to all three"))["id"]
    for inbox in inboxes:
        assert record_id(await inbox.next()) == str(message)


async def test_filters(rt: Realtime, db: Db) -> None:
    chat_a, chat_b = await db.new_chat(ALICE, BOB), await db.new_chat(ALICE)
    alice = await rt.client(ALICE)
    bindings = {
        "all": "",
        "eq": f"session_id=eq.{chat_a}",
        "neq": f"session_id=neq.{chat_a}",
        "in": f"session_id=eq.{chat_b},seq=in.(1, 3)",
        "gt": f"session_id=eq.{chat_b},seq=gt.2",
        "lte": f"session_id=eq.{chat_b},seq=lte.1",
        "not_in": f"session_id=eq.{chat_b},seq=not.in.(1,2,3)",
        "chats_in": f"session_id=in.({chat_a},{chat_b})",
    }
    inboxes = {name: Inbox() for name in bindings}
    channel = alice.channel("filters")
    for name, condition in bindings.items():
        channel.on_postgres_changes(Event.Insert, inboxes[name], table="chat_messages", filter=condition or None)
    await subscribe(channel)

    a1 = (await db.post(BOB, chat_a, "a1"))["id"]
    b = [(await db.post(ALICE, chat_b, f"b{i}"))["id"] for i in range(1, 5)]
    # One push per change lists every matching binding, so when the unfiltered binding has seen the
    # last change, every other binding has seen all it will see of these changes.
    await inboxes["all"].until(lambda p: record_id(p) == str(b[-1]))

    def seen(name: str) -> list[str]:
        return [record_id(p) for p in inboxes[name].items]

    assert seen("all") == [str(m) for m in (a1, *b)]
    assert seen("eq") == [str(a1)]
    assert seen("neq") == [str(m) for m in b]
    assert seen("in") == [str(b[0]), str(b[2])]
    assert seen("gt") == [str(b[2]), str(b[3])]
    assert seen("lte") == [str(b[0])]
    assert seen("not_in") == [str(b[3])]
    assert seen("chats_in") == [str(m) for m in (a1, *b)]
    ids = {callback.id for callback in channel.postgres_changes_callbacks}
    assert len(ids) == len(bindings) and all(isinstance(i, int) and i > 0 for i in ids)
    last = inboxes["all"].items[-1]
    expected = {
        cb.id
        for cb, name in zip(channel.postgres_changes_callbacks, bindings, strict=True)
        if name in ("all", "neq", "gt", "not_in", "chats_in")
    }
    assert set(last["ids"]) == expected


async def test_event_kinds_on_a_table_with_a_composite_key(rt: Realtime, db: Db) -> None:
    chat = await db.new_chat(ALICE, BOB)
    alice = await rt.client(ALICE)
    inboxes = {event: Inbox() for event in (Event.Insert, Event.Update, Event.Delete, Event.All)}
    channel = alice.channel("members")
    for event, inbox in inboxes.items():
        channel.on_postgres_changes(event, inbox, table="chat_members", filter=f"session_id=eq.{chat}")
    await subscribe(channel)

    # Each change is awaited before the next: visibility is checked on the row as it is when the change
    # is processed (as Realtime does), and a row deleted meanwhile would hide the changes before it.
    everything = []
    async with db.as_user(ALICE) as conn:
        await conn.execute("insert into public.chat_members (session_id, user_id) values ($1, $2)", chat, CAROL)
    everything.append(await inboxes[Event.All].next())
    await db.post(ALICE, chat, "bump last_seq")
    async with db.as_user(CAROL) as conn:
        await conn.execute(
            "update public.chat_members set last_read_seq = 1 where session_id = $1 and user_id = $2", chat, CAROL
        )
    everything.append(await inboxes[Event.All].next())
    async with db.as_user(CAROL) as conn:  # carol leaves: a hard delete
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, CAROL)
    everything.append(await inboxes[Event.All].next())

    assert [p["data"]["type"] for p in everything] == ["INSERT", "UPDATE", "DELETE"]
    assert [p["data"]["type"] for p in inboxes[Event.Insert].items] == ["INSERT"]
    assert [p["data"]["type"] for p in inboxes[Event.Update].items] == ["UPDATE"]
    assert [p["data"]["type"] for p in inboxes[Event.Delete].items] == ["DELETE"]
    update, delete = everything[1]["data"], everything[2]["data"]
    assert update["record"]["last_read_seq"] == 1
    assert update["old_record"] == {"session_id": str(chat), "user_id": str(CAROL)}
    # A deleted row cannot be checked against RLS: only its primary key goes out.
    assert delete["old_record"] == {"session_id": str(chat), "user_id": str(CAROL)}
    assert delete.get("record") is None
    assert [c["name"] for c in delete["columns"]] == ["session_id", "user_id", "role", "joined_at", "last_read_seq"]


async def test_deletes_go_to_roles_that_may_select_the_table(rt: Realtime, db: Db, samples: str) -> None:
    chat = await db.new_chat(ALICE, BOB)
    carol_stranger, anon = await rt.client(CAROL), await rt.client()  # carol is not in the chat
    stranger_inbox, anon_inbox = Inbox(), Inbox()
    await subscribe(carol_stranger.channel("d").on_postgres_changes(Event.Delete, stranger_inbox, table="chat_members"))
    await subscribe(
        anon.channel("d")
        .on_postgres_changes(Event.All, anon_inbox, table="chat_members")
        .on_postgres_changes(Event.Insert, anon_inbox, schema="rt_test", table="samples")
    )
    async with db.as_user(ALICE) as conn:  # the owner removes bob
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, BOB)
    removed = await stranger_inbox.next()  # she may select the table, just not the row
    assert removed["data"]["old_record"] == {"session_id": str(chat), "user_id": str(BOB)}
    # anon has no privilege on chat_members; it may read rt_test.samples, the control.
    control = await db.pool.fetchval(f"insert into {samples} (label) values ('control') returning id")
    assert (await anon_inbox.next())["data"]["record"]["id"] == control
    assert len(anon_inbox.items) == 1


async def test_select_limits_the_columns(rt: Realtime, db: Db) -> None:
    chat = await db.new_chat(ALICE)
    alice = await rt.client(ALICE)
    inbox = Inbox()
    channel = alice.channel("select").on_postgres_changes(
        Event.Insert, inbox, table="chat_messages", filter=f"session_id=eq.{chat}", select=["content"]
    )
    await subscribe(channel)
    message = (await db.post(ALICE, chat, "just the text"))["id"]
    data = (await inbox.next())["data"]
    # The key, (id, session_id), always comes along.
    assert data["record"] == {"id": str(message), "session_id": str(chat), "content": "just the text"}
    assert [c["name"] for c in data["columns"]] == ["id", "session_id", "content"]


@pytest.fixture
async def samples(db: Db) -> Any:
    """A published table of many column types, readable by anon, added while the gateway runs."""
    await db.pool.execute(
        """
        create schema rt_test;
        create type rt_test.mood as enum ('happy', 'sad');
        create domain rt_test.positive as integer check (value > 0);
        create table rt_test.samples (
          id bigint generated always as identity primary key,
          label text, small smallint, big bigint, num numeric, real_ float4, dbl float8, flag boolean,
          uid uuid default gen_random_uuid(), at timestamptz default now(), local_at timestamp, day date,
          clock time, clock_tz timetz, span interval, doc jsonb, raw json, bytes bytea, ints int[],
          texts text[], stamps timestamptz[], docs jsonb[], nested int[][], feeling rt_test.mood,
          amount rt_test.positive, vc varchar(10), ch char(3), addr inet, cash money
        );
        grant usage on schema rt_test to anon, authenticated;
        grant select on rt_test.samples to anon, authenticated;
        alter publication supabase_realtime add table rt_test.samples;
        """
    )
    try:
        yield "rt_test.samples"
    finally:
        await db.pool.execute("alter publication supabase_realtime drop table rt_test.samples")
        await db.pool.execute("drop schema rt_test cascade")


async def test_values_render_as_postgrest_renders_them(rt: Realtime, db: Db, samples: str) -> None:
    anon = await rt.client()
    inbox = Inbox()
    await subscribe(anon.channel("samples").on_postgres_changes(Event.Insert, inbox, schema="rt_test", table="samples"))
    row_id = await db.pool.fetchval(
        f"""
        insert into {samples} (label, small, big, num, real_, dbl, flag, local_at, day, clock, clock_tz, span,
          doc, raw, bytes, ints, texts, stamps, docs, nested, feeling, amount, vc, ch, addr, cash)
        values ('ünïcode "quoted"', -3, 9007199254740993, 12.50, 1.5, 1e100, true, '2025-01-02 03:04:05.123',
          '2025-01-02', '12:00:01.5', '12:00+05:30', '1 day 2 hours',
          '{{"k": [1, 2.5, null], "s": "x"}}', '{{"b":true , "a":1}}', '\\x00ff', '{{1,NULL,3}}',
          '{{"a,b","c d",NULL,"NULL"}}', '{{"2025-01-02 03:04:05+00"}}', array['{{"x": 1}}'::jsonb],
          '{{{{1,2}},{{3,4}}}}', 'happy', 7, 'short', 'ab', '10.0.0.1/8', 12.34)
        returning id
        """
    )
    data = (await inbox.next())["data"]
    # PostgREST builds its responses with json_agg, i.e. to_json (jsonb would turn 1e100 into digits).
    expected = await db.pool.fetchval(f"select to_json(s)::text from {samples} s where id = $1", row_id)
    assert data["record"] == json.loads(expected)
    types = await db.pool.fetch(
        f"select a.attname, t.typname from pg_attribute a join pg_type t on t.oid = a.atttypid"
        f" where a.attrelid = '{samples}'::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum"
    )
    assert [(c["name"], c["type"]) for c in data["columns"]] == [(r["attname"], r["typname"]) for r in types]


async def test_a_change_too_large_for_one_frame_loses_its_large_values(rt: Realtime, db: Db, samples: str) -> None:
    anon = await rt.client()
    inbox = Inbox()
    await subscribe(anon.channel("big").on_postgres_changes(Event.Insert, inbox, schema="rt_test", table="samples"))
    row_id = await db.pool.fetchval(
        f"insert into {samples} (label, vc) values (repeat('x', 1100000), 'small') returning id"
    )
    data = (await inbox.next())["data"]
    assert data["errors"] == ["Error 413: Payload Too Large"]  # as Realtime says it
    assert data["record"]["id"] == row_id and data["record"]["vc"] == "small"
    assert "label" not in data["record"]


async def test_grants_and_policies_changed_while_subscribed(rt: Realtime, db: Db, samples: str) -> None:
    bob = await rt.client(BOB)
    inbox = Inbox()
    await subscribe(bob.channel("grants").on_postgres_changes(Event.Insert, inbox, schema="rt_test", table="samples"))
    before = await db.pool.fetchval(f"insert into {samples} (label, vc) values ('all columns', 'x') returning id")
    assert set((await inbox.next())["data"]["record"]) > {"id", "label", "vc"}
    # Now only two columns, and only rows a policy admits (the gateway hears of DDL and re-reads).
    await db.pool.execute(
        f"""
        revoke select on {samples} from authenticated;
        grant select (id, label) on {samples} to authenticated;
        alter table {samples} enable row level security;
        create policy not_hidden on {samples} for select to authenticated using (label <> 'hidden');
        """
    )
    ids = [
        await db.pool.fetchval(f"insert into {samples} (label, vc) values ($1, 'x') returning id", label)
        for label in ("shown", "hidden", "shown too")
    ]
    first, second = (await inbox.next())["data"], (await inbox.next())["data"]
    assert [first["record"], second["record"]] == [
        {"id": ids[0], "label": "shown"},
        {"id": ids[2], "label": "shown too"},
    ]
    assert [c["name"] for c in first["columns"]] == ["id", "label"]
    assert before not in ids
