"""Filter syntax (Supabase's) and typed matching of wal2json values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from devstack.gateway.realtime.filters import (
    BoundFilter,
    FilterError,
    FilterSpec,
    comparable,
    matches_all,
    parse_filters,
)


def test_parse_every_operator() -> None:
    for op in ("eq", "neq", "lt", "lte", "gt", "gte"):
        assert parse_filters(f"seq={op}.5") == (FilterSpec("seq", op, False, ("5",)),)
    assert parse_filters("id=in.(1,2,3)") == (FilterSpec("id", "in", False, ("1", "2", "3")),)


def test_parse_in_lists_with_quotes_and_spaces() -> None:
    (spec,) = parse_filters('tag=in.("a,b", c d ,"x\\"y",plain)')
    assert spec.values == ("a,b", "c d", 'x"y', "plain")
    assert parse_filters("id=in.()")[0].values == ()


def test_parse_several_conditions_and_negation() -> None:
    specs = parse_filters("seq=gt.10, status=not.in.(open,closed),title=eq.a=b")
    assert specs == (
        FilterSpec("seq", "gt", False, ("10",)),
        FilterSpec("status", "in", True, ("open", "closed")),
        FilterSpec("title", "eq", False, ("a=b",)),
    )
    assert parse_filters("") == () and parse_filters("  ") == ()


@pytest.mark.parametrize(
    "text",
    ["undefined", "id", "=eq.1", "id=like.%x%", "id=eq", "id=in.1,2", "id=eq.1,,seq=eq.2", 'id=eq."open', "id=fts.x"],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(FilterError, match="Error parsing `filter` params"):
        parse_filters(text)


def bound(text: str, typname: str, canonical: tuple[str, ...] | None = None) -> BoundFilter:
    (spec,) = parse_filters(text)
    return BoundFilter.bind(spec, typname, canonical if canonical is not None else spec.values)


def test_integers_compare_as_numbers() -> None:
    assert bound("seq=gt.9", "int8").matches({"seq": 10})
    assert not bound("seq=gt.10", "int8").matches({"seq": 10})
    assert bound("seq=gte.10", "int8").matches({"seq": 10})
    assert bound("seq=lt.10", "int8").matches({"seq": 9})
    assert bound("seq=lte.10", "int8").matches({"seq": 10})
    assert bound("seq=neq.10", "int8").matches({"seq": 11})
    assert not bound("seq=neq.10", "int8").matches({"seq": 10})
    assert bound("id=in.(1,2,3)", "int4").matches({"id": 2})
    assert not bound("id=in.(1,2,3)", "int4").matches({"id": 4})
    assert bound("id=not.in.(1,2,3)", "int4").matches({"id": 4})


def test_numeric_and_float_compare_exactly() -> None:
    assert bound("price=eq.12.50", "numeric").matches({"price": Decimal("12.5")})
    assert bound("price=gt.2", "numeric").matches({"price": Decimal("10.25")})  # not "10.25" < "2" as text
    assert bound("ratio=lt.1e-3", "float8").matches({"ratio": Decimal("0.0001")})


def test_uuid_and_text() -> None:
    chat = "c0000000-0000-4000-8000-00000000a0b0"
    assert bound(f"session_id=eq.{chat}", "uuid").matches({"session_id": chat})
    assert not bound(f"session_id=eq.{chat}", "uuid").matches({"session_id": chat.replace("a0b0", "a0b1")})
    assert bound("name=lt.b", "text").matches({"name": "abc"})
    assert bound("name=gte.é", "text").matches({"name": "ö"})  # code point order, as in the C.UTF-8 cluster


def test_timestamps_compare_in_time_not_as_text() -> None:
    # The canonical operand comes from Postgres in the session's zone; the row value too.
    after = bound("created_at=gt.2025-01-02 03:04:05+00", "timestamptz")
    assert after.matches({"created_at": "2025-01-02 03:04:05.5+00"})
    assert not after.matches({"created_at": "2025-01-02 03:04:05+00"})
    assert after.matches({"created_at": "infinity"})
    assert not after.matches({"created_at": "-infinity"})
    assert bound("created_at=lt.2025-01-02 04:00:00+01", "timestamptz").matches(
        {"created_at": "2025-01-02 02:59:59+00"}
    )
    assert bound("day=gte.2025-01-02", "date").matches({"day": "2025-01-03"})
    assert bound("at=lt.2025-01-02 03:04:05", "timestamp").matches({"at": "2025-01-02 03:04:04.999"})


def test_booleans() -> None:
    assert bound("done=eq.true", "bool").matches({"done": True})
    assert not bound("done=eq.true", "bool").matches({"done": False})
    assert bound("done=neq.t", "bool").matches({"done": False})


def test_null_and_missing_values_never_match() -> None:
    for text in ("deleted_at=eq.x", "deleted_at=neq.x", "deleted_at=not.eq.x", "deleted_at=in.(x)"):
        condition = bound(text, "text")
        assert not condition.matches({"deleted_at": None})
        assert not condition.matches({})


def test_ordering_refused_on_types_without_a_python_order() -> None:
    with pytest.raises(FilterError, match="not supported"):
        bound("span=gt.1 day", "interval")
    assert bound("span=eq.1 day", "interval").matches({"span": "1 day"})  # equality of canonical text


def test_bad_operand_for_the_type() -> None:
    with pytest.raises(FilterError, match="invalid value"):
        bound("seq=eq.abc", "int8")


def test_all_conditions_must_hold() -> None:
    conditions = tuple(
        BoundFilter.bind(spec, typname, spec.values)
        for spec, typname in zip(parse_filters("seq=gt.1,seq=lt.5"), ("int8", "int8"), strict=True)
    )
    assert matches_all(conditions, {"seq": 3})
    assert not matches_all(conditions, {"seq": 5})
    assert matches_all((), None)
    assert not matches_all(conditions, None)


def test_char_n_compares_without_trailing_spaces() -> None:
    """The WAL prints char(5) padded (``ab   ``); a filter operand cast to text is not: Postgres ignores them."""
    assert comparable("bpchar", "ab   ") == comparable("bpchar", "ab")
    assert comparable("bpchar", "ab   ") < comparable("bpchar", "abc  ")
    assert comparable("varchar", "ab ") != comparable("varchar", "ab")  # varchar keeps them, as Postgres does
