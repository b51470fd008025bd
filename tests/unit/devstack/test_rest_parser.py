"""devstack.gateway.rest.parser: PostgREST's query grammar, without a database."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from postgrest.utils import sanitize_param

from devstack.gateway.rest.errors import RestError
from devstack.gateway.rest.parser import (
    MAX_EMBED_DEPTH,
    STAR,
    Condition,
    Embed,
    Field,
    JsonStep,
    Logic,
    OrderItem,
    Preferences,
    SelectField,
    parse_filter,
    parse_filter_path,
    parse_logic,
    parse_name_list,
    parse_order,
    parse_prefer,
    parse_query,
    parse_select,
)


def _code(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(RestError) as caught:
        call()
    return caught.value.status, caught.value.code


def _cond(column: str, operator: str, value: str | tuple[str, ...], **extra: object) -> Condition:
    return Condition(Field(column), operator, value, **extra)  # type: ignore[arg-type]


@pytest.fixture
def shallow_stack() -> Iterator[None]:
    """A recursion limit far below the nesting the tests use: parsing must not recurse per level."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(120)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize(
    "operator", ["eq", "neq", "gt", "gte", "lt", "lte", "match", "imatch", "cs", "cd", "ov", "sl", "sr", "adj"]
)
def test_operators_keep_the_value_as_written(operator: str) -> None:
    assert parse_filter("seq", f"{operator}.4.5,x") == _cond("seq", operator, "4.5,x")


def test_not_quantifiers_and_full_text_configurations() -> None:
    assert parse_filter("seq", "not.eq.1") == _cond("seq", "eq", "1", negated=True)
    assert parse_filter("tags", "eq(any).{a,b}") == _cond("tags", "eq", "{a,b}", quantifier="any")
    assert parse_filter("name", "not.like(all).{A*,*n}") == _cond(
        "name", "like", "{A%,%n}", negated=True, quantifier="all"
    )
    assert parse_filter("body", "fts(english).cat & dog") == _cond("body", "fts", "cat & dog", language="english")
    assert parse_filter("body", "wfts.cat or dog") == _cond("body", "wfts", "cat or dog")
    assert parse_filter("a", "isdistinct.x") == _cond("a", "isdistinct", "x")


def test_like_stars_become_percent_signs() -> None:
    assert parse_filter("content", "like.*a*b%") == _cond("content", "like", "%a%b%")
    assert parse_filter("content", "ilike.A*") == _cond("content", "ilike", "A%")


@pytest.mark.parametrize(
    ("text", "keyword"), [("null", "null"), ("TRUE", "true"), ("false", "false"), ("unknown", "unknown")]
)
def test_is_takes_only_its_keywords(text: str, keyword: str) -> None:
    assert parse_filter("deleted_at", f"is.{text}") == _cond("deleted_at", "is", keyword)


def test_in_lists_with_quotes_and_escapes() -> None:
    assert parse_filter("tag", 'in.("a,b",c d,"x\\"y",plain)') == _cond("tag", "in", ("a,b", "c d", 'x"y', "plain"))
    assert parse_filter("tag", "in.()") == _cond("tag", "in", ())


# The official client quotes only reserved characters, so blanks at the start of the first value travel bare
# and PostgREST's list parser (``lexeme (char '(')``) skips them: such values are the next test's subject.
@given(
    st.lists(st.text(min_size=1).filter(lambda v: "\x00" not in v), min_size=1, max_size=6).filter(
        lambda values: not values[0].startswith((" ", "\t"))
    )
)
def test_in_lists_read_back_what_the_official_client_writes(values: list[str]) -> None:
    encoded = ",".join(sanitize_param(value) for value in values)
    assert parse_filter("tag", f"in.({encoded})").value == tuple(values)


def test_blanks_after_the_opening_parenthesis_are_skipped_as_postgrest_does() -> None:
    assert parse_filter("tag", "in.( a, b )").value == ("a", " b ")
    assert parse_filter("tag", "in.(\t)").value == ()
    assert parse_filter("tag", 'in.(" a")').value == (" a",)


@pytest.mark.parametrize(
    "value",
    ["eq", "equals.1", "1", "in.1,2", "in.(1,2", "is.maybe", "not.1", 'in.("open)', "eq(some).1", "neq(any).1"],
)
def test_malformed_filters_are_pgrst100(value: str) -> None:
    assert _code(lambda: parse_filter("seq", value)) == (400, "PGRST100")


def test_filter_keys_name_an_embed_path_and_a_json_path() -> None:
    assert parse_filter_path("cities.name", "eq.x") == (("cities",), _cond("name", "eq", "x"))
    path, condition = parse_filter_path("data->a->>0", "eq.1")
    assert path == ()
    assert condition == Condition(Field("data", (JsonStep("->", "a"), JsonStep("->>", "0", index=True))), "eq", "1")
    assert parse_filter_path("data->1x", "eq.1")[1] == Condition(Field("data", (JsonStep("->", "1x"),)), "eq", "1")
    assert parse_filter_path("p_ids", "{1,2}", rpc_read=True) == ((), None)


def test_logic_trees_nest_and_negate() -> None:
    tree = parse_logic("or", '(a.eq.1,and(b.gt.2,c.not.like.*x*),not.or(d.is.null,e.in.(1,"2,3")))')
    assert tree == Logic(
        "or",
        (
            _cond("a", "eq", "1"),
            Logic("and", (_cond("b", "gt", "2"), _cond("c", "like", "%x%", negated=True))),
            Logic("or", (_cond("d", "is", "null"), _cond("e", "in", ("1", "2,3"))), negated=True),
        ),
    )


def test_values_in_trees_are_quoted_arrays_or_plain() -> None:
    tree = parse_logic("and", '(title.eq."a, (b)",tags.cs.{x,y},n.gt.3)')
    assert tree.items == (_cond("title", "eq", "a, (b)"), _cond("tags", "cs", "{x,y}"), _cond("n", "gt", "3"))


def test_a_tree_nested_thousands_deep_parses_without_recursion(shallow_stack: None) -> None:
    depth = 5000
    tree = parse_logic("or", "(" + "and(" * depth + "id.eq.1" + ")" * depth + ")")
    for _ in range(depth + 1):
        [tree] = tree.items  # type: ignore[assignment]
    assert tree == _cond("id", "eq", "1")


@pytest.mark.parametrize(
    "value",
    ["a.eq.1", "(a.eq.1", "(a.eq.1))", "(a.eq.1)x", "(a.zz.1)", "(.eq.1)", "(not.a.eq.1)", "(a)", "()", "(or())"],
)
def test_malformed_trees_are_pgrst100(value: str) -> None:
    assert _code(lambda: parse_logic("or", value)) == (400, "PGRST100")


def test_select_columns_aliases_star_casts_and_json_paths() -> None:
    assert parse_select('id, number:seq,*,"odd name",total::text,pc:address->postcode,data->>k::int') == (
        SelectField(Field("id")),
        SelectField(Field("seq"), "number"),
        STAR,
        SelectField(Field("odd name")),
        SelectField(Field("total"), cast="text"),
        SelectField(Field("address", (JsonStep("->", "postcode"),)), "pc"),
        SelectField(Field("data", (JsonStep("->>", "k"),)), cast="int"),
    )


def test_select_embeds_with_aliases_hints_joins_spreads_and_nesting() -> None:
    assert parse_select(
        "id,sender:profiles!sender_fk(name),chat_members!inner(role,profiles(*)),...cities(name),c:t()"
    ) == (
        SelectField(Field("id")),
        Embed("profiles", (SelectField(Field("name")),), alias="sender", hint="sender_fk"),
        Embed(
            "chat_members",
            (SelectField(Field("role")), Embed("profiles", (STAR,))),
            inner=True,
        ),
        Embed("cities", (SelectField(Field("name")),), spread=True),
        Embed("t", (), alias="c"),
    )
    assert parse_select("x!left!fk(*)") == (Embed("x", (STAR,), hint="fk"),)
    assert parse_select("") == ()


def test_select_nesting_is_bounded_and_parsed_without_recursion(shallow_stack: None) -> None:
    nested = "a(" * MAX_EMBED_DEPTH + "b" + ")" * MAX_EMBED_DEPTH
    assert isinstance(parse_select(nested)[0], Embed)
    deeper = "a(" * 2000 + "b" + ")" * 2000
    assert _code(lambda: parse_select(deeper)) == (400, "PGRST100")


@pytest.mark.parametrize("value", ["count()", "c:count()", "total.sum()", "x.max()::int"])
def test_aggregates_are_refused_as_postgrest_refuses_them_by_default(value: str) -> None:
    assert _code(lambda: parse_select(value)) == (400, "PGRST123")


@pytest.mark.parametrize("value", ["id,,seq", 'a"b', "a(b", "a)b", "id::", "id!hint", "x(y)z", "a->", "*!x"])
def test_malformed_selects_are_pgrst100(value: str) -> None:
    assert _code(lambda: parse_select(value)) == (400, "PGRST100")


def test_order_with_directions_nulls_relations_and_json_paths() -> None:
    assert parse_order("created_at.desc.nullsfirst,id,seq.nullslast,x.asc,profiles(name).desc,data->>k") == (
        OrderItem(Field("created_at"), True, "first"),
        OrderItem(Field("id")),
        OrderItem(Field("seq"), None, "last"),
        OrderItem(Field("x"), False),
        OrderItem(Field("name"), True, relation="profiles"),
        OrderItem(Field("data", (JsonStep("->>", "k"),))),
    )


@pytest.mark.parametrize(
    "value", ["seq.sideways", "seq.desc.asc", "seq.nullsfirst.nullslast", ".desc", "a.desc.nullsfirst.x", "a(b,c)"]
)
def test_malformed_order_is_pgrst100(value: str) -> None:
    assert _code(lambda: parse_order(value)) == (400, "PGRST100")


def test_name_lists_quoted_or_not() -> None:
    assert parse_name_list("columns", '"reply_to","content","room_id"') == ("reply_to", "content", "room_id")
    assert parse_name_list("on_conflict", "room_id,user_id") == ("room_id", "user_id")
    assert _code(lambda: parse_name_list("on_conflict", "a) do nothing")) == (400, "PGRST100")
    assert _code(lambda: parse_name_list("columns", "a,,b")) == (400, "PGRST100")


def test_query_keeps_repeated_filters_and_each_levels_paging() -> None:
    query = parse_query(
        [
            ("select", "id,cities(name)"),
            ("id", "gt.10"),
            ("id", "lt.100"),
            ("or", "(a.eq.1,b.eq.2)"),
            ("cities.not.and", "(name.is.null)"),
            ("cities.name", "neq.x"),
            ("order", "id.desc"),
            ("cities.order", "name"),
            ("limit", "50"),
            ("offset", "20"),
            ("cities.limit", "2"),
        ]
    )
    assert query.where_at(()) == (
        _cond("id", "gt", "10"),
        _cond("id", "lt", "100"),
        Logic("or", (_cond("a", "eq", "1"), _cond("b", "eq", "2"))),
    )
    assert query.where_at(("cities",)) == (
        Logic("and", (_cond("name", "is", "null"),), negated=True),
        _cond("name", "neq", "x"),
    )
    assert (query.order_at(()), query.limit, query.offset) == ((OrderItem(Field("id"), True),), 50, 20)
    assert (query.order_at(("cities",)), query.limit_at(("cities",))) == ((OrderItem(Field("name")),), 2)
    assert query.paths() == {("cities",)}


def test_rpc_reads_take_parameters_without_an_operator_as_arguments() -> None:
    query = parse_query([("p_ids", "{1,2}"), ("q", "x"), ("id", "eq.1")], rpc_read=True)
    assert query.arguments == (("p_ids", "{1,2}"), ("q", "x"))
    assert query.where == (((), _cond("id", "eq", "1")),)


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


def test_prefer_takes_the_first_of_each_kind_and_lists_the_unknown() -> None:
    prefs = parse_prefer(
        [
            "return=representation,count=exact",
            "resolution=ignore-duplicates, missing=default, tx=rollback, return=minimal, bogus, max-affected=5",
        ]
    )
    assert prefs == Preferences(
        return_="representation",
        count="exact",
        resolution="ignore-duplicates",
        missing="default",
        tx="rollback",
        max_affected=5,
        invalid=("bogus",),
    )
    assert prefs.applied(("resolution", "missing", "return_", "count", "tx", "handling", "max_affected")) == (
        "resolution=ignore-duplicates, missing=default, return=representation, count=exact, tx=rollback"
    )
    prefs.check()  # lenient by default: unknown preferences are ignored
    strict = parse_prefer(["handling=strict, max-affected=5, Count=Exact"])
    assert strict.applied(("count", "handling", "max_affected")) == "handling=strict, max-affected=5"
    assert _code(strict.check) == (400, "PGRST122")
