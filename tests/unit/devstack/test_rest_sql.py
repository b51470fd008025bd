"""devstack.gateway.rest.sql: statements from syntax trees, checked without a database.

What runs correctly is the integration tests' business; these pin the safety rules: names come from
the catalog and are quoted, values only ever travel as parameters, and the statement text depends on
the request's shape, never on its values.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.gateway.rest.catalog import Argument, Column, Function, Table
from devstack.gateway.rest.errors import RestError
from devstack.gateway.rest.parser import Condition, Query, SelectItem, parse_query
from devstack.gateway.rest.sql import build_delete, build_insert, build_read, build_rpc, build_update, quote_ident

MESSAGES = Table(
    "chat_messages",
    {
        name: Column(name, type_)
        for name, type_ in [
            ("id", "uuid"),
            ("session_id", "uuid"),
            ("content", "text"),
            ("seq", "bigint"),
            ("tags", "text[]"),
            ('we"ird', "integer"),
        ]
    },
    primary_key=("id",),
)


def _query(**params: str) -> Query:
    return parse_query(list(params.items()))


def _code(call: object) -> str:
    assert callable(call)
    with pytest.raises(RestError) as caught:
        call()
    return caught.value.code


def test_a_read_quotes_names_casts_values_from_the_catalog_and_binds_everything() -> None:
    query = parse_query(
        [
            ("select", "id,text:content"),
            ("session_id", "eq.c0000000-0000-4000-8000-00000000a0b0"),
            ("seq", "in.(1,2)"),
            ("content", "not.ilike.*hi*"),
            ("order", "seq.desc.nullslast"),
            ("limit", "50"),
        ]
    )
    statement = build_read(MESSAGES, query, count=True, head=False, max_rows=None)
    assert '"public"."chat_messages" as _src' in statement.sql
    assert '_src."id", _src."content" as "text"' in statement.sql
    assert '_src."session_id" = $1::text::uuid' in statement.sql
    assert '_src."seq" = any($2::text[]::bigint[])' in statement.sql
    assert 'not (_src."content"::text ilike $3::text)' in statement.sql
    assert 'order by _src."seq" desc nulls last' in statement.sql
    assert "limit $4::bigint offset $5::bigint" in statement.sql
    assert "(select count(*) from" in statement.sql
    assert statement.params == ["c0000000-0000-4000-8000-00000000a0b0", ["1", "2"], "%hi%", 50, 0]


def test_max_rows_caps_the_limit_and_head_skips_the_body() -> None:
    capped = build_read(MESSAGES, _query(limit="5000"), count=False, head=True, max_rows=1000)
    assert capped.params == [1000, 0]
    assert "null::text as body" in capped.sql
    assert "null::bigint as total" in capped.sql
    uncapped = build_read(MESSAGES, _query(), count=False, head=False, max_rows=None)
    assert uncapped.params == [None, 0]


def test_odd_column_names_are_quoted_by_doubling_quotes() -> None:
    query = Query(select=(SelectItem('we"ird'),), where=(Condition('we"ird', "gt", "1"),))
    statement = build_read(MESSAGES, query, count=False, head=False, max_rows=None)
    assert '_src."we""ird"' in statement.sql
    assert quote_ident('a"; drop table x; --') == '"a""; drop table x; --"'
    assert _code(lambda: quote_ident("nul\x00")) == "PGRST100"


@given(st.text(), st.text())
def test_the_statement_text_does_not_depend_on_values(first: str, second: str) -> None:
    def build(value: str) -> tuple[str, list[object]]:
        query = parse_query([("content", f"eq.{value}"), ("or", f'(content.like."{_escaped(value)}",seq.lt.3)')])
        statement = build_read(MESSAGES, query, count=True, head=False, max_rows=1000)
        return statement.sql, statement.params

    sql_one, params_one = build(first)
    sql_two, params_two = build(second)
    assert sql_one == sql_two
    assert (params_one[0], params_two[0]) == (first, second)


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"select": "nope"}, "42703"),
        ({"nope": "eq.1"}, "42703"),
        ({"order": "nope"}, "42703"),
        ({"or": "(seq.eq.1,and(nope.eq.2))"}, "42703"),
    ],
)
def test_unknown_names_are_refused_before_any_sql(params: dict[str, str], code: str) -> None:
    assert _code(lambda: build_read(MESSAGES, _query(**params), count=False, head=False, max_rows=None)) == code


def test_insert_takes_the_union_of_keys_in_first_seen_order() -> None:
    rows = [{"session_id": "s", "content": "a"}, {"content": "b", "tags": ["x"]}]
    [statement] = build_insert(
        MESSAGES, Query(), rows, representation=True, count=False, resolution=None, missing_default=False
    )
    assert 'insert into "public"."chat_messages" as _src ("session_id", "content", "tags")' in statement.sql
    assert 'json_to_recordset($1::json) as _r("session_id" uuid, "content" text, "tags" text[])' in statement.sql
    assert "returning _src.*" in statement.sql
    assert json.loads(statement.params[0]) == [
        {"session_id": "s", "content": "a", "tags": None},
        {"session_id": None, "content": "b", "tags": ["x"]},
    ]


def test_insert_columns_parameter_selects_keys_and_unknown_keys_are_pgrst204() -> None:
    query = parse_query([("columns", '"content"')])
    [statement] = build_insert(
        MESSAGES,
        query,
        [{"content": "a", "ignored": 1}],
        representation=False,
        count=False,
        resolution=None,
        missing_default=False,
    )
    assert json.loads(statement.params[0]) == [{"content": "a"}]
    assert "returning 1" in statement.sql
    assert (
        _code(
            lambda: build_insert(
                MESSAGES,
                Query(),
                [{"bogus": 1}],
                representation=True,
                count=False,
                resolution=None,
                missing_default=False,
            )
        )
        == "PGRST204"
    )


def test_missing_default_splits_rows_by_their_keys_in_order() -> None:
    rows = [{"content": "a"}, {"content": "b"}, {"content": "c", "seq": 5}, {"content": "d"}]
    statements = build_insert(
        MESSAGES, Query(), rows, representation=True, count=True, resolution=None, missing_default=True
    )
    assert [json.loads(s.params[0]) for s in statements] == [
        [{"content": "a"}, {"content": "b"}],
        [{"content": "c", "seq": 5}],
        [{"content": "d"}],
    ]


def test_upsert_conflict_clauses() -> None:
    def clause(resolution: str | None, **params: str) -> str:
        [statement] = build_insert(
            MESSAGES,
            _query(**params),
            [{"id": "x", "content": "a"}],
            representation=True,
            count=False,
            resolution=resolution,
            missing_default=False,
        )
        return statement.sql

    assert 'on conflict ("id") do nothing' in clause("ignore-duplicates")
    assert 'on conflict ("id") do update set "id" = excluded."id", "content" = excluded."content"' in clause(
        "merge-duplicates"
    )
    assert 'on conflict ("session_id", "seq") do nothing' in clause("ignore-duplicates", on_conflict="session_id,seq")
    assert "on conflict" not in clause(None)
    assert _code(lambda: clause("merge-duplicates", on_conflict="nope")) == "42703"


def test_update_and_delete_filter_with_bound_values() -> None:
    statement = build_update(MESSAGES, _query(id="eq.abc"), {"content": "new"}, representation=True, count=True)
    assert statement is not None
    assert 'update "public"."chat_messages" as _src set "content" = _r."content"' in statement.sql
    assert 'from json_to_record($1::json) as _r("content" text)' in statement.sql
    assert 'where _src."id" = $2::text::uuid' in statement.sql
    assert statement.params == ['{"content": "new"}', "abc"]
    assert build_update(MESSAGES, _query(id="eq.abc"), {}, representation=True, count=False) is None
    deleted = build_delete(MESSAGES, _query(seq="lt.3"), representation=False, count=False)
    assert 'delete from "public"."chat_messages" as _src where _src."seq" < $1::text::bigint returning 1' in deleted.sql
    assert _code(lambda: build_delete(MESSAGES, _query(limit="1"), representation=False, count=False)) == "PGRST100"


SERIES = Function(
    "series",
    (Argument("n", "integer", False), Argument("step", "integer", True)),
    returns_set=True,
    result="composite",
    columns={"i": Column("i", "integer"), "label": Column("label", "text")},
    volatility="stable",
)


def test_rpc_passes_named_arguments_as_one_json_record() -> None:
    statement = build_rpc(SERIES, {"n": "5"}, _query(i="gt.2", select="label"), count=False, head=False, max_rows=1000)
    assert (
        'json_to_record($1::json) as _a("n" integer) cross join lateral "public"."series"("n" => _a."n") as _src'
        in statement.sql
    )
    assert '_src."i" > $2::text::integer' in statement.sql
    assert statement.params[:2] == ['{"n": "5"}', "2"]


def test_rpc_result_kinds() -> None:
    scalar = Function("add", (Argument("a", "integer", False),), False, "scalar", {}, "immutable")
    assert (
        'to_json("public"."add"("a" => _a."a"))::text as body'
        in build_rpc(scalar, {"a": 1}, Query(), count=False, head=False, max_rows=None).sql
    )
    assert (
        _code(lambda: build_rpc(scalar, {"a": 1}, _query(a="eq.1"), count=False, head=False, max_rows=None))
        == "PGRST100"
    )
    void = Function("noop", (), False, "void", {}, "volatile")
    assert build_rpc(void, {}, Query(), count=False, head=False, max_rows=None).sql.endswith(
        '"public"."noop"()::text as body'
    )
    ints = Function("ints", (), True, "scalar", {}, "stable")
    statement = build_rpc(ints, {}, Query(), count=False, head=False, max_rows=1000)
    assert "json_agg(_row._value)" in statement.sql
    assert statement.params == [1000, 0]
    assert (
        _code(lambda: build_rpc(ints, {}, Query(select=(SelectItem("x"),)), count=False, head=False, max_rows=None))
        == "PGRST100"
    )


def test_function_argument_matching() -> None:
    assert SERIES.accepts(frozenset({"n"}))
    assert SERIES.accepts(frozenset({"n", "step"}))
    assert not SERIES.accepts(frozenset({"step"}))
    assert not SERIES.accepts(frozenset({"n", "other"}))


def test_a_merge_with_missing_default_updates_only_the_keys_each_row_brought() -> None:
    rows = [{"id": "a", "content": "x"}, {"id": "b"}]
    statements = build_insert(
        MESSAGES,
        Query(),
        rows,
        representation=True,
        count=False,
        resolution="merge-duplicates",
        missing_default=True,
    )
    assert 'do update set "id" = excluded."id", "content" = excluded."content"' in statements[0].sql
    assert 'do update set "id" = excluded."id" returning' in statements[1].sql
