"""devstack.gateway.rest.parser: PostgREST's query grammar, without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from postgrest.utils import sanitize_param

from devstack.gateway.rest.errors import RestError
from devstack.gateway.rest.parser import (
    Condition,
    Logic,
    OrderItem,
    Preferences,
    SelectItem,
    parse_filter,
    parse_in_list,
    parse_logic,
    parse_name_list,
    parse_order,
    parse_prefer,
    parse_query,
    parse_select,
)


def _code(call: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(RestError) as caught:
        call()
    return caught.value.status, caught.value.code


@pytest.mark.parametrize("operator", ["eq", "neq", "gt", "gte", "lt", "lte", "match", "imatch"])
def test_comparison_filters_keep_the_value_as_written(operator: str) -> None:
    assert parse_filter("seq", f"{operator}.4.5,x") == Condition("seq", operator, "4.5,x")


def test_not_prefix_negates() -> None:
    assert parse_filter("seq", "not.eq.1") == Condition("seq", "eq", "1", negated=True)


def test_like_stars_become_percent_signs() -> None:
    assert parse_filter("content", "like.*a*b%") == Condition("content", "like", "%a%b%")
    assert parse_filter("content", "ilike.A*") == Condition("content", "ilike", "A%")


@pytest.mark.parametrize(
    ("text", "keyword"), [("null", "null"), ("TRUE", "true"), ("false", "false"), ("unknown", "unknown")]
)
def test_is_takes_only_its_keywords(text: str, keyword: str) -> None:
    assert parse_filter("deleted_at", f"is.{text}") == Condition("deleted_at", "is", keyword)


def test_in_lists_with_quotes_and_escapes() -> None:
    assert parse_filter("tag", 'in.("a,b",c d,"x\\"y",plain)') == Condition("tag", "in", ("a,b", "c d", 'x"y', "plain"))
    assert parse_filter("tag", "in.()") == Condition("tag", "in", ())


@given(st.lists(st.text(min_size=1).filter(lambda v: "\x00" not in v), min_size=1, max_size=6))
def test_in_lists_read_back_what_the_official_client_writes(values: list[str]) -> None:
    encoded = ",".join(sanitize_param(value) for value in values)
    assert parse_in_list(f"({encoded})", source=encoded) == tuple(values)


@pytest.mark.parametrize(
    "value",
    ["eq", "equals.1", "1", "in.1,2", "in.(1,2", "is.maybe", "not.1", 'in.("open)'],
)
def test_malformed_filters_are_pgrst100(value: str) -> None:
    assert _code(lambda: parse_filter("seq", value)) == (400, "PGRST100")


def test_logic_trees_nest_and_negate() -> None:
    tree = parse_logic("or", '(a.eq.1,and(b.gt.2,c.not.like.*x*),not.or(d.is.null,e.in.(1,"2,3")))')
    assert tree == Logic(
        "or",
        (
            Condition("a", "eq", "1"),
            Logic("and", (Condition("b", "gt", "2"), Condition("c", "like", "%x%", negated=True))),
            Logic("or", (Condition("d", "is", "null"), Condition("e", "in", ("1", "2,3"))), negated=True),
        ),
    )


def test_quoted_values_in_trees_may_hold_commas_and_parentheses() -> None:
    tree = parse_logic("and", '(title.eq."a, (b)",title.neq.x(y))')
    assert tree.items == (Condition("title", "eq", "a, (b)"), Condition("title", "neq", "x(y)"))


@pytest.mark.parametrize(
    "value",
    ["a.eq.1", "(a.eq.1", "(a.eq.1))", "(a.eq.1)x", "(a.zz.1)", "(.eq.1)", "(not.a.eq.1)", "(a)", "()"],
)
def test_malformed_trees_are_pgrst100(value: str) -> None:
    assert _code(lambda: parse_logic("or", value)) == (400, "PGRST100")


def test_select_columns_aliases_and_star() -> None:
    assert parse_select('id, number:seq,*,"odd name"') == (
        SelectItem("id"),
        SelectItem("seq", "number"),
        SelectItem("*"),
        SelectItem("odd name"),
    )


@pytest.mark.parametrize(
    "value", ["id,author(*)", "...author(name)", "count()", "id::text", "meta->k", "id,,seq", 'a"b']
)
def test_select_features_beyond_the_subset_are_refused(value: str) -> None:
    assert _code(lambda: parse_select(value)) == (400, "PGRST100")


def test_order_with_directions_and_nulls() -> None:
    assert parse_order("created_at.desc.nullsfirst,id,seq.nullslast,x.asc") == (
        OrderItem("created_at", True, "first"),
        OrderItem("id"),
        OrderItem("seq", False, "last"),
        OrderItem("x"),
    )


@pytest.mark.parametrize(
    "value", ["seq.sideways", "seq.desc.asc", "seq.nullsfirst.nullslast", ".desc", "a.desc.nullsfirst.x"]
)
def test_malformed_order_is_pgrst100(value: str) -> None:
    assert _code(lambda: parse_order(value)) == (400, "PGRST100")


def test_name_lists_quoted_or_not() -> None:
    assert parse_name_list("columns", '"reply_to","content","room_id"') == ("reply_to", "content", "room_id")
    assert parse_name_list("on_conflict", "room_id,user_id") == ("room_id", "user_id")
    assert _code(lambda: parse_name_list("on_conflict", "a) do nothing")) == (400, "PGRST100")
    assert _code(lambda: parse_name_list("columns", "a,,b")) == (400, "PGRST100")


def test_query_keeps_repeated_filters_and_reads_paging() -> None:
    query = parse_query(
        [
            ("select", "id"),
            ("id", "gt.10"),
            ("id", "lt.100"),
            ("or", "(a.eq.1,b.eq.2)"),
            ("order", "id.desc"),
            ("limit", "50"),
            ("offset", "20"),
        ]
    )
    assert query.select == (SelectItem("id"),)
    assert query.where == (
        Condition("id", "gt", "10"),
        Condition("id", "lt", "100"),
        Logic("or", (Condition("a", "eq", "1"), Condition("b", "eq", "2"))),
    )
    assert (query.order, query.limit, query.offset) == ((OrderItem("id", True),), 50, 20)


def test_rpc_arguments_are_not_filters() -> None:
    query = parse_query([("p_ids", "{1,2}"), ("q", "x"), ("id", "eq.1")], arguments=frozenset({"p_ids", "q"}))
    assert query.arguments == {"p_ids": "{1,2}", "q": "x"}
    assert query.where == (Condition("id", "eq", "1"),)


@pytest.mark.parametrize(
    ("key", "value", "status", "code"),
    [
        ("limit", "ten", 400, "PGRST100"),
        ("limit", "-1", 416, "PGRST103"),
        ("offset", "1e3", 400, "PGRST100"),
        ("limit", "99999999999999999999", 400, "PGRST100"),
    ],
)
def test_bad_paging(key: str, value: str, status: int, code: str) -> None:
    assert _code(lambda: parse_query([(key, value)])) == (status, code)


def test_prefer_headers_combine_and_ignore_the_unknown() -> None:
    prefs = parse_prefer(
        ["return=representation,count=exact", "resolution=ignore-duplicates, missing=default, tx=commit"]
    )
    assert prefs == Preferences("representation", "exact", "ignore-duplicates", missing_default=True)
    assert prefs.applied() == "return=representation, count=exact, resolution=ignore-duplicates, missing=default"
    assert parse_prefer(["count=bogus"]) == Preferences()
