"""devstack.gateway.rest.sql and plan: statements from syntax trees, checked without a database.

What runs correctly is the integration tests' business; these pin the safety rules and the shapes:
names come from the catalog and are quoted, values only ever travel as parameters, the statement text
depends on the request's shape, never on its values, and embedding picks relationships PostgREST's way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.gateway.rest.catalog import Argument, Column, Function, Snapshot, Table, relationships
from devstack.gateway.rest.errors import RestError
from devstack.gateway.rest.parser import parse_query
from devstack.gateway.rest.sql import (
    Payload,
    build_delete,
    build_insert,
    build_read,
    build_rpc,
    build_update,
    quote_ident,
)


def _col(name: str, type_: str, cast: str, *, json: str | None = None, default: str | None = None) -> Column:
    return Column(name, type_, cast, json, default)  # type: ignore[arg-type]


COUNTRIES = Table(
    "countries",
    {
        c.name: c
        for c in [
            _col("id", "bigint", "pg_catalog.int8"),
            _col("iso", "character(2)", "pg_catalog.bpchar"),
            _col("price", "numeric(6,2)", "pg_catalog.numeric", default="0"),
            _col("meta", "jsonb", "pg_catalog.jsonb", json="jsonb"),
            _col("tags", "character varying(5)[]", "pg_catalog._varchar"),
            _col('we"ird', "integer", "pg_catalog.int4"),
        ]
    },
    primary_key=("id",),
)
CITIES = Table(
    "cities",
    {
        c.name: c
        for c in [
            _col("id", "bigint", "pg_catalog.int8"),
            _col("country_id", "bigint", "pg_catalog.int8"),
            _col("capital_of", "bigint", "pg_catalog.int8"),
            _col("name", "text", "pg_catalog.text"),
        ]
    },
    primary_key=("id",),
)
# A junction: both keys are its primary key, so countries and tags embed each other many-to-many.
TAGS = Table("tags", {"id": _col("id", "bigint", "pg_catalog.int8")}, primary_key=("id",))
COUNTRY_TAGS = Table(
    "country_tags",
    {
        "country_id": _col("country_id", "bigint", "pg_catalog.int8"),
        "tag_id": _col("tag_id", "bigint", "pg_catalog.int8"),
    },
    primary_key=("country_id", "tag_id"),
)
TABLES = {t.name: t for t in (COUNTRIES, CITIES, TAGS, COUNTRY_TAGS)}
FOREIGN_KEYS = [
    {
        "name": "cities_capital_fk",
        "table": "cities",
        "foreign_table": "countries",
        "columns": ["capital_of"],
        "foreign_columns": ["id"],
        "one_to_one": False,
    },
    {
        "name": "cities_country_fk",
        "table": "cities",
        "foreign_table": "countries",
        "columns": ["country_id"],
        "foreign_columns": ["id"],
        "one_to_one": False,
    },
    {
        "name": "ct_country_fk",
        "table": "country_tags",
        "foreign_table": "countries",
        "columns": ["country_id"],
        "foreign_columns": ["id"],
        "one_to_one": False,
    },
    {
        "name": "ct_tag_fk",
        "table": "country_tags",
        "foreign_table": "tags",
        "columns": ["tag_id"],
        "foreign_columns": ["id"],
        "one_to_one": False,
    },
]
SNAPSHOT = Snapshot(
    tables=TABLES,
    relationships=relationships(FOREIGN_KEYS, TABLES),  # type: ignore[arg-type]
    types={"text": "text", "int": "integer", "int4": "pg_catalog.int4", "char": "character"},
)


def _query(*pairs: tuple[str, str]) -> object:
    return parse_query(list(pairs))


def _read(*pairs: tuple[str, str], table: Table = COUNTRIES, count: bool = False, max_rows: int | None = None) -> str:
    return build_read(SNAPSHOT, table, parse_query(list(pairs)), count=count, media="json", max_rows=max_rows).sql


def _code(call: Callable[[], object]) -> str:
    with pytest.raises(RestError) as caught:
        call()
    return caught.value.code


@pytest.fixture
def shallow_stack() -> Iterator[None]:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(150)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def test_a_read_quotes_names_casts_values_without_their_modifier_and_binds_everything() -> None:
    query = parse_query(
        [
            ("select", "id,code:iso"),
            ("iso", "eq.DZ"),
            ("id", "in.(1,2)"),
            ("iso", "not.ilike.*z*"),
            ("price", "gt.1.005"),
            ("order", "id.desc.nullslast"),
            ("limit", "50"),
        ]
    )
    statement = build_read(SNAPSHOT, COUNTRIES, query, count=True, media="json", max_rows=None)
    sql = statement.sql
    assert 'SELECT "public"."countries"."id", "public"."countries"."iso" AS "code" FROM "public"."countries"' in sql
    # char(2) is compared as written (bpchar), not cut to one character by a cast to `character`.
    assert '"public"."countries"."iso" = $1::text::pg_catalog.bpchar' in sql
    assert '"public"."countries"."id" = ANY($2::text[]::pg_catalog.int8[])' in sql
    assert 'NOT ("public"."countries"."iso" ilike $3::text)' in sql
    assert '"public"."countries"."price" > $4::text::pg_catalog.numeric' in sql
    assert 'ORDER BY "public"."countries"."id" DESC NULLS LAST LIMIT $5::bigint OFFSET $6::bigint' in sql
    assert "pgrst_source_count AS ( SELECT 1 FROM" in sql
    assert statement.params[:6] == ["DZ", ["1", "2"], "%z%", "1.005", 50, 0]


def test_operators_quantifiers_full_text_and_json_paths() -> None:
    sql = _read(
        ("tags", "cs.{a,b}"),
        ("tags", "ov.{c}"),
        ("iso", "like(any).{A*,*Z}"),
        ("id", "eq(all).{1,2}"),
        ("meta->>k", "eq.v"),
        ("meta->a->0", "cs.[1]"),
        ("iso", "fts(english).cat"),
        ("price", "isdistinct.1"),
    )
    assert '"public"."countries"."tags" @> $1::text::pg_catalog._varchar' in sql
    assert '"public"."countries"."tags" && $2::text::pg_catalog._varchar' in sql
    assert '"public"."countries"."iso" like ANY($3::text::text[])' in sql
    assert '"public"."countries"."id" = ALL($4::text::pg_catalog.int8[])' in sql
    assert '"public"."countries"."meta"->>$5::text = $6::text::pg_catalog.text' in sql
    assert '"public"."countries"."meta"->$7::text->$8::int @> $9::text::pg_catalog.jsonb' in sql
    assert "@@ to_tsquery($10::regconfig, $11::text)" in sql
    assert "IS DISTINCT FROM $12::text::pg_catalog.numeric" in sql


def test_select_casts_come_from_the_catalog_and_json_paths_are_named_after_their_last_key() -> None:
    sql = _read(("select", "id::text,price::int4,meta->a->>b,m:meta->0,meta->x->1"))
    assert 'CAST("public"."countries"."id" AS text)' in sql
    assert 'CAST("public"."countries"."price" AS pg_catalog.int4)' in sql
    assert '"public"."countries"."meta"->$1::text->>$2::text AS "b"' in sql
    assert '"public"."countries"."meta"->$3::int AS "m"' in sql
    assert '->$5::int AS "x"' in sql
    assert _code(lambda: _read(("select", "id::nope"))) == "42704"
    assert _code(lambda: _read(("select", "iso->>k"), ("iso->k", "eq.1"), table=CITIES)) == "42703"


def test_odd_names_are_quoted_by_doubling_quotes() -> None:
    assert '"public"."countries"."we""ird" > $1::text::pg_catalog.int4' in _read(('"we\\"ird"', "gt.1"))
    assert quote_ident('a"; drop table x; --') == '"a""; drop table x; --"'
    assert _code(lambda: quote_ident("nul\x00")) == "PGRST100"


@given(st.text(), st.text())
def test_the_statement_text_does_not_depend_on_values(first: str, second: str) -> None:
    def build(value: str) -> tuple[str, list[object]]:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        query = parse_query(
            [
                ("select", "id,cities!country_id(name)"),
                ("iso", f"eq.{value}"),
                ("or", f'(iso.like."{escaped}",id.lt.3)'),
                ("cities.name", f"neq.{value}"),
                ("meta->>" + ('"' + escaped + '"'), "eq.1"),
            ]
        )
        statement = build_read(SNAPSHOT, COUNTRIES, query, count=True, media="json", max_rows=1000)
        return statement.sql, statement.params

    sql_one, params_one = build(first)
    sql_two, params_two = build(second)
    assert sql_one == sql_two
    assert (params_one[0], params_two[0]) == (first, second)


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        ((("select", "nope"),), "42703"),
        ((("nope", "eq.1"),), "42703"),
        ((("order", "nope"),), "42703"),
        ((("or", "(id.eq.1,and(nope.eq.2))"),), "42703"),
        ((("select", "id,cities!country_id(nope)"),), "42703"),
        ((("select", "id,nowhere(*)"),), "PGRST200"),
        ((("select", "id"), ("cities.name", "eq.x")), "PGRST108"),
        ((("select", "id,cities!country_id(name)"), ("order", "cities(name)")), "PGRST118"),
        ((("select", "id,...cities!country_id(name)"),), "PGRST119"),
    ],
)
def test_unknown_names_and_impossible_embeds_are_refused_before_any_sql(
    pairs: tuple[tuple[str, str], ...], code: str
) -> None:
    assert _code(lambda: _read(*pairs)) == code


def test_embedding_many_to_one_and_one_to_many_through_lateral_joins() -> None:
    many = _read(("select", "id,cities!cities_country_fk(name)"), ("cities.name", "like.L*"), ("cities.limit", "2"))
    assert (
        'LEFT JOIN LATERAL ( SELECT json_agg("countries_cities_1")::jsonb AS "countries_cities_1" FROM ( SELECT'
        ' "cities_1"."name" FROM "public"."cities" AS "cities_1" WHERE "cities_1"."name" like $1::text AND'
        ' "cities_1"."country_id" = "public"."countries"."id" LIMIT $2::bigint OFFSET $3::bigint ) AS'
        ' "countries_cities_1" ) AS "countries_cities_1" ON TRUE'
    ) in many
    assert 'COALESCE("countries_cities_1"."countries_cities_1", \'[]\') AS "cities"' in many
    one = build_read(
        SNAPSHOT,
        CITIES,
        parse_query([("select", "name,home:countries!country_id(iso)"), ("order", "home(iso).desc")]),
        count=False,
        media="json",
        max_rows=None,
    ).sql
    assert 'row_to_json("cities_home_1".*)::jsonb AS "home"' in one
    assert 'WHERE "countries_1"."id" = "public"."cities"."country_id"' in one
    assert 'ORDER BY "cities_home_1"."iso" DESC' in one


def test_ambiguous_embeds_need_a_hint_as_in_postgrest() -> None:
    with pytest.raises(RestError) as caught:
        build_read(
            SNAPSHOT, CITIES, parse_query([("select", "countries(*)")]), count=False, media="json", max_rows=None
        )
    error = caught.value
    assert (error.status, error.code) == (300, "PGRST201")
    assert error.details == [
        {
            "cardinality": "many-to-one",
            "embedding": "cities with countries",
            "relationship": "cities_capital_fk using cities(capital_of) and countries(id)",
        },
        {
            "cardinality": "many-to-one",
            "embedding": "cities with countries",
            "relationship": "cities_country_fk using cities(country_id) and countries(id)",
        },
    ]
    assert error.hint == (
        "Try changing 'countries' to one of the following: 'countries!cities_capital_fk', "
        "'countries!cities_country_fk'. Find the desired relationship in the 'details' key."
    )


def test_many_to_many_goes_through_the_junction_and_inner_filters_the_parents() -> None:
    sql = _read(("select", "id,tags!inner(id)"), count=True)
    assert 'FROM "public"."tags" AS "tags_1", "public"."country_tags"' in sql
    assert '"public"."country_tags"."tag_id" = "tags_1"."id"' in sql
    assert '"public"."country_tags"."country_id" = "public"."countries"."id"' in sql
    assert "INNER JOIN LATERAL" in sql and 'ON "countries_tags_1" IS NOT NULL' in sql
    assert "WHERE EXISTS (SELECT 1 FROM" in sql  # the count honours !inner too


def test_null_embed_filters_and_max_rows_on_every_level() -> None:
    sql = _read(("select", "id,cities!country_id()"), ("cities", "not.is.null"), count=True, max_rows=1000)
    assert '"countries_cities_1" IS DISTINCT FROM NULL' in sql
    assert 'pgrst_source_count AS ( SELECT 1 FROM "public"."countries" WHERE EXISTS' in sql
    assert sql.count("LIMIT $") == 2


def test_a_deep_logic_tree_renders_without_recursion(shallow_stack: None) -> None:
    depth = 3000
    query = parse_query([("or", "(" + "or(" * depth + "id.eq.1" + ")" * depth + ")")])
    statement = build_read(SNAPSHOT, COUNTRIES, query, count=True, media="json", max_rows=None)
    assert statement.sql.count("(") > 2 * depth
    assert statement.params == ["1", "1"]


def test_inserts_pass_the_body_as_sent_and_type_it_with_modifiers() -> None:
    raw = '[{"iso": "DZ", "price": 12345.678901234567890}]'
    statement = build_insert(
        SNAPSHOT,
        COUNTRIES,
        parse_query([]),
        Payload(raw, ("iso", "price"), False),
        representation=True,
        media="json",
        resolution=None,
        missing_default=False,
    )
    sql = statement.sql
    assert 'INSERT INTO "public"."countries"("iso", "price") SELECT pgrst_body."iso", pgrst_body."price"' in sql
    assert 'json_to_recordset(pgrst_payload.json_data) AS _("iso" character(2), "price" numeric(6,2))' in sql
    assert 'RETURNING "public"."countries".*' in sql
    assert statement.params == [raw]
    assert (
        _code(
            lambda: build_insert(
                SNAPSHOT,
                COUNTRIES,
                parse_query([]),
                Payload("{}", ("bogus",), True),
                representation=True,
                media="json",
                resolution=None,
                missing_default=False,
            )
        )
        == "PGRST204"
    )


def test_missing_default_fills_absent_keys_from_the_catalog_defaults() -> None:
    statement = build_insert(
        SNAPSHOT,
        COUNTRIES,
        parse_query([]),
        Payload('[{"iso": "AA"}]', ("iso", "price"), False),
        representation=False,
        media="none",
        resolution="merge-duplicates",
        missing_default=True,
    )
    sql = statement.sql
    assert "jsonb_agg(jsonb_build_object($2::text, 0) || elem)" in sql
    assert "jsonb_to_recordset(pgrst_json_defs.val)" in sql
    assert 'ON CONFLICT("id") DO UPDATE SET "iso" = EXCLUDED."iso", "price" = EXCLUDED."price"' in sql
    assert "set_config('pgrst.inserted'" in sql and "RETURNING 1" in sql
    assert statement.params == ['[{"iso": "AA"}]', "price"]


def test_upsert_conflict_clauses() -> None:
    def clause(resolution: str | None, *pairs: tuple[str, str]) -> str:
        return build_insert(
            SNAPSHOT,
            COUNTRIES,
            parse_query(list(pairs)),
            Payload('{"id": 1, "iso": "a"}', ("id", "iso"), True),
            representation=True,
            media="json",
            resolution=resolution,
            missing_default=False,
        ).sql

    assert 'ON CONFLICT("id") DO NOTHING' in clause("ignore-duplicates")
    assert 'ON CONFLICT("id") DO UPDATE SET "id" = EXCLUDED."id", "iso" = EXCLUDED."iso"' in clause("merge-duplicates")
    assert 'ON CONFLICT("iso", "price") DO NOTHING' in clause("ignore-duplicates", ("on_conflict", "iso,price"))
    assert "ON CONFLICT" not in clause(None, ("on_conflict", "iso"))
    assert _code(lambda: clause("merge-duplicates", ("on_conflict", "nope"))) == "42703"


def test_updates_and_deletes_filter_with_bound_values_and_need_a_filter() -> None:
    statement = build_update(
        SNAPSHOT,
        COUNTRIES,
        parse_query([("id", "eq.7")]),
        Payload('{"iso": "ZZ"}', ("iso",), True),
        representation=True,
        media="json",
        missing_default=False,
    )
    assert 'UPDATE "public"."countries" SET "iso" = pgrst_body."iso"' in statement.sql
    assert 'json_to_record(pgrst_payload.json_data) AS _("iso" character(2))' in statement.sql
    assert 'WHERE "public"."countries"."id" = $1::text::pg_catalog.int8' in statement.sql
    assert statement.params == ["7", '{"iso": "ZZ"}']
    deleted = build_delete(SNAPSHOT, COUNTRIES, parse_query([("id", "lt.3")]), representation=False, media="none")
    assert 'DELETE FROM "public"."countries" WHERE "public"."countries"."id" < $1::text::pg_catalog.int8' in deleted.sql
    # pg-safeupdate, loaded for the API on Supabase, refuses a write to every row.
    assert (
        _code(lambda: build_delete(SNAPSHOT, COUNTRIES, parse_query([]), representation=False, media="none")) == "21000"
    )
    limited = parse_query([("id", "gt.1"), ("limit", "1")])
    assert _code(lambda: build_delete(SNAPSHOT, COUNTRIES, limited, representation=False, media="none")) == "PGRST109"
    ordered = parse_query([("id", "gt.1"), ("limit", "1"), ("order", "id")])
    sql = build_delete(SNAPSHOT, COUNTRIES, ordered, representation=False, media="none").sql
    assert "pgrst_affected_rows AS (SELECT" in sql and "USING pgrst_affected_rows" in sql


SERIES = Function(
    "series",
    (Argument("n", "pg_catalog.int4", False, "integer"), Argument("step", "pg_catalog.int4", True, "integer")),
    returns_set=True,
    result="composite",
    columns={"i": _col("i", "integer", "pg_catalog.int4"), "label": _col("label", "text", "pg_catalog.text")},
    volatility="stable",
)


def test_rpc_passes_named_arguments_as_one_json_record() -> None:
    statement = build_rpc(
        SNAPSHOT,
        SERIES,
        '{"n": "5"}',
        ("n",),
        parse_query([("i", "gt.2"), ("select", "label")]),
        count=False,
        media="json",
        max_rows=1000,
    )
    sql = statement.sql
    assert 'json_to_record(pgrst_payload.json_data) AS _("n" pg_catalog.int4) LIMIT 1) pgrst_body' in sql
    assert 'LATERAL "public"."series"("n" := pgrst_body."n") pgrst_call' in sql
    assert '"series"."i" > $2::text::pg_catalog.int4' in sql
    assert statement.params[:2] == ['{"n": "5"}', "2"]


def test_rpc_result_kinds() -> None:
    scalar = Function("add", (Argument("a", "pg_catalog.int4", False),), False, "scalar", {}, "immutable")
    sql = build_rpc(SNAPSHOT, scalar, '{"a": 1}', ("a",), parse_query([]), count=False, media="json", max_rows=None).sql
    assert '(SELECT "public"."add"("a" := pgrst_body."a") pgrst_scalar)' in sql
    assert "coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null')" in sql
    refused = parse_query([("a", "eq.1")])
    assert _code(lambda: build_rpc(SNAPSHOT, scalar, "{}", (), refused, count=False, media="json", max_rows=None))
    ints = Function("ints", (), True, "scalar", {}, "stable")
    statement = build_rpc(SNAPSHOT, ints, None, (), parse_query([]), count=False, media="json", max_rows=1000)
    assert "coalesce(json_agg(_postgrest_t.pgrst_scalar), '[]')" in statement.sql
    assert statement.params == [1000, 0]


def test_function_argument_matching() -> None:
    assert SERIES.accepts(frozenset({"n"}))
    assert SERIES.accepts(frozenset({"n", "step"}))
    assert not SERIES.accepts(frozenset({"step"}))
    assert not SERIES.accepts(frozenset({"n", "other"}))
