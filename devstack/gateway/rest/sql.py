"""SQL for a planned request. Pure: plan plus catalog in, SQL text with ``$n`` parameters out.

Rules that keep this safe: every identifier comes from the catalog and is double-quoted; every value
from the request (filter operands, JSON keys, bodies) is a bound parameter, sent as text or JSON and
converted by PostgreSQL, so a malformed value fails in an input function (22P02) instead of changing the
statement. Type names, defaults and casts in the text come only from the catalog.

The statements have PostgREST's shape (``PostgREST.Query.QueryBuilder``): the request's rows are a CTE
``pgrst_source`` (a read, a data-modifying statement or a function call), embedded resources are
lateral joins, and one row ``(total, n, body, inserted)`` comes back: the total count when asked for,
the number of rows, the body built by PostgreSQL (JSON or CSV, so types render exactly as PostgREST
renders them) and, for a merge upsert, how many rows were inserted rather than updated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from devstack.gateway.rest.catalog import Column, Function, Snapshot, Table
from devstack.gateway.rest.errors import RestError, parse_error, unknown_payload_column
from devstack.gateway.rest.parser import STAR, Condition, Field, Logic, Node, Query, SelectField
from devstack.gateway.rest.plan import ReadNode, plan_read, qualified, quote_ident

__all__ = [
    "Payload",
    "Statement",
    "build_delete",
    "build_insert",
    "build_read",
    "build_rpc",
    "build_update",
    "qualified",
    "quote_ident",
]

Media = Literal["json", "single", "stripped", "single-stripped", "csv", "none"]

_COMPARISONS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "neq": "<>"}
_RANGES = {"cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-"}
_PATTERNS = {"like": "like", "ilike": "ilike", "match": "~", "imatch": "~*"}
_FULL_TEXT = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
# Types a pattern operator applies to as they are; any other column is compared as text.
_STRING_TYPES = frozenset(
    {"pg_catalog.text", "pg_catalog.varchar", "pg_catalog.bpchar", "pg_catalog.name", "extensions.citext"}
)
_INSERTED = "nullif(current_setting('pgrst.inserted', true), '')::int"


@dataclass
class Statement:
    sql: str
    params: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Payload:
    """A write's JSON body: its text as sent (PostgreSQL parses it, numbers keep their precision), the keys
    the write takes, and whether it is one object or an array of them."""

    raw: str
    keys: tuple[str, ...]
    is_object: bool


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


class _Builder:
    """Renders read trees and conditions, collecting parameters in order."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.params = _Params()

    # --- fields and values ---------------------------------------------------------------------------------

    def field(self, node: ReadNode, field: Field, ref: str | None = None) -> tuple[str, str]:
        """The SQL of ``field`` on ``node`` and the type its operands are cast to."""
        column = node.column(field.name)
        expr = f"{ref or node.ref}.{quote_ident(column.name)}"
        if not field.path:
            return expr, column.cast
        kind = column.json or "jsonb"
        if column.json is None:
            # Other types go through to_jsonb, as PostgREST does, so a path works on any column.
            expr = f"to_jsonb({expr})"
        for step in field.path:
            key = f"{self.params.add(int(step.key))}::int" if step.index else f"{self.params.add(step.key)}::text"
            expr = f"{expr}{step.arrow}{key}"
        return expr, ("pg_catalog.text" if field.path[-1].arrow == "->>" else f"pg_catalog.{kind}")

    def cast(self, name: str) -> str:
        spelling = self.snapshot.types.get(name.strip().lower()) or self.snapshot.types.get(name.strip())
        if spelling is None:
            raise RestError(400, "42704", f'type "{name}" does not exist')
        return spelling

    def condition(self, node: ReadNode, cond: Condition, *, count: bool = False) -> str:
        if cond.operator == "embed-null":
            embed = next(e for e in node.embeds if e.aggregate == cond.value)
            if count:
                return f"{'' if cond.negated else 'NOT '}EXISTS ({self.count_sql(embed.node)})"
            return f"{quote_ident(embed.aggregate)} IS {'' if cond.negated else 'NOT '}DISTINCT FROM NULL"
        expr, operand = self.field(node, cond.field)
        op = cond.operator
        value = cond.value
        if op == "is":
            # The keyword comes from the parser's fixed set, never from the request.
            sql = f"{expr} IS {str(value).upper()}"
        elif op == "isdistinct":
            sql = f"{expr} IS DISTINCT FROM {self.params.add(value)}::text::{operand}"
        elif op == "in":
            values = list(value) if isinstance(value, tuple) else [value]
            sql = f"{expr} = ANY({self.params.add(values)}::text[]::{operand}[])"
        elif op in _FULL_TEXT:
            config = f"{self.params.add(cond.language)}::regconfig, " if cond.language else ""
            sql = f"{expr} @@ {_FULL_TEXT[op]}({config}{self.params.add(value)}::text)"
        elif op in _PATTERNS:
            subject = expr if operand in _STRING_TYPES else f"{expr}::text"
            if cond.quantifier:
                target = f"{cond.quantifier.upper()}({self.params.add(value)}::text::text[])"
            else:
                target = f"{self.params.add(value)}::text"
            sql = f"{subject} {_PATTERNS[op]} {target}"
        else:
            sql_op = _COMPARISONS.get(op) or _RANGES[op]
            if cond.quantifier:
                target = f"{cond.quantifier.upper()}({self.params.add(value)}::text::{operand}[])"
            else:
                target = f"{self.params.add(value)}::text::{operand}"
            sql = f"{expr} {sql_op} {target}"
        return f"NOT ({sql})" if cond.negated else sql

    def predicate(self, node: ReadNode, item: Node, *, count: bool = False) -> str:
        """A condition or a logic tree; trees are rendered with an explicit stack, not recursion."""
        if isinstance(item, Condition):
            return self.condition(node, item, count=count)
        stack: list[tuple[Logic, list[str]]] = [(item, [])]
        while True:
            current, parts = stack[-1]
            if len(parts) < len(current.items):
                child = current.items[len(parts)]
                if isinstance(child, Logic):
                    stack.append((child, []))
                else:
                    parts.append(self.condition(node, child, count=count))
                continue
            joined = (" AND " if current.op == "and" else " OR ").join(parts)
            text = f"NOT ({joined})" if current.negated else f"({joined})"
            stack.pop()
            if not stack:
                return text
            stack[-1][1].append(text)

    # --- reads ---------------------------------------------------------------------------------------------

    def select_items(self, node: ReadNode) -> list[str]:
        items: list[str] = []
        fields = node.select or ([] if node.embeds else [STAR])
        for item in fields:
            if item.field.name == "*" and not item.field.path:
                items.append(f"{node.ref}.*")
                continue
            expr, _ = self.field(node, item.field)
            if item.cast:
                expr = f"CAST({expr} AS {self.cast(item.cast)})"
            alias = item.alias or _path_alias(item)
            items.append(f"{expr} AS {quote_ident(alias)}" if alias else expr)
        for embed in node.embeds:
            aggregate = quote_ident(embed.aggregate)
            if embed.embed.spread:
                items.extend(f"{aggregate}.{name}" for name in _output_names(embed.node))
            elif embed.empty:
                continue
            elif embed.to_one:
                items.append(f"row_to_json({aggregate}.*)::jsonb AS {quote_ident(embed.label)}")
            else:
                items.append(f"COALESCE({aggregate}.{aggregate}, '[]') AS {quote_ident(embed.label)}")
        return items

    def read_sql(self, node: ReadNode) -> str:
        """``SELECT ... FROM ... [joins] WHERE ... ORDER BY ... LIMIT ...`` for a node and its embeds."""
        items = ", ".join(self.select_items(node)) or "NULL"
        joins = []
        for embed in node.embeds:
            child = self.read_sql(embed.node)
            aggregate = quote_ident(embed.aggregate)
            kind = "INNER" if embed.embed.inner else "LEFT"
            if embed.to_one:
                joins.append(f"{kind} JOIN LATERAL ( {child} ) AS {aggregate} ON TRUE")
            else:
                on = f"{aggregate} IS NOT NULL" if embed.embed.inner else "TRUE"
                joins.append(
                    f"{kind} JOIN LATERAL ( SELECT json_agg({aggregate})::jsonb AS {aggregate}"
                    f" FROM ( {child} ) AS {aggregate} ) AS {aggregate} ON {on}"
                )
        where = [self.predicate(node, item) for item in node.where] + _join_conditions(node)
        sql = f"SELECT {items} FROM {node.source}{', ' + node.junction if node.junction else ''}"
        if joins:
            sql += " " + " ".join(joins)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += self.order_sql(node) + self.page_sql(node)
        return sql

    def order_sql(self, node: ReadNode) -> str:
        terms = []
        for item in node.order:
            if item.relation is not None:
                embed = node.embed(item.relation)
                assert embed is not None  # the planner checked it
                expr, _ = self.field(embed.node, item.field, ref=quote_ident(embed.aggregate))
            else:
                expr, _ = self.field(node, item.field)
            if item.descending is not None:
                expr += " DESC" if item.descending else " ASC"
            if item.nulls:
                expr += f" NULLS {item.nulls.upper()}"
            terms.append(expr)
        return " ORDER BY " + ", ".join(terms) if terms else ""

    def page_sql(self, node: ReadNode) -> str:
        if node.limit is None and not node.offset:
            return ""
        limit = "ALL" if node.limit is None else f"{self.params.add(node.limit)}::bigint"
        return f" LIMIT {limit} OFFSET {self.params.add(node.offset or 0)}::bigint"

    def count_sql(self, node: ReadNode) -> str:
        """PostgREST's count query: the node's filters and joins, and EXISTS for its inner embeds."""
        where = [self.predicate(node, item, count=True) for item in node.where] + _join_conditions(node)
        where += [f"EXISTS ({self.count_sql(embed.node)})" for embed in node.embeds if embed.embed.inner]
        sql = f"SELECT 1 FROM {node.source}{', ' + node.junction if node.junction else ''}"
        return sql + (" WHERE " + " AND ".join(where) if where else "")


def _join_conditions(node: ReadNode) -> list[str]:
    return [f"{a}.{quote_ident(ca)} = {b}.{quote_ident(cb)}" for a, ca, b, cb in node.joins]


def _path_alias(item: SelectField) -> str | None:
    """PostgREST's name for a JSON path: its last key (an index keeps the last key before it, or the column)."""
    path = item.field.path
    if not path:
        return None
    if not path[-1].index:
        return path[-1].key
    keys = [step.key for step in path if not step.index]
    return keys[-1] if keys else item.field.name


def _output_names(node: ReadNode) -> list[str]:
    """The columns a spread embed brings up to its parent (quoted; ``*`` stays a star)."""
    names = []
    for item in node.select or ([] if node.embeds else [STAR]):
        if item.field.name == "*" and not item.field.path:
            names.append("*")
        else:
            names.append(quote_ident(item.alias or _path_alias(item) or item.field.name))
    for embed in node.embeds:
        if embed.embed.spread:
            names.extend(_output_names(embed.node))
        elif not embed.empty:
            names.append(quote_ident(embed.label))
    return names


def _restrict(root: ReadNode, max_rows: int | None) -> None:
    """PostgREST's ``db-max-rows`` applies to every level of a read."""
    if max_rows is None:
        return
    nodes = [root]
    while nodes:
        node = nodes.pop()
        node.limit = max_rows if node.limit is None else min(node.limit, max_rows)
        nodes.extend(embed.node for embed in node.embeds)


def _body(media: Media, *, value: str = "_postgrest_t", scalar_set: bool = False, single_row: bool = False) -> str:
    if media == "none":
        return "null::text"
    if media == "csv":
        header = (
            "(SELECT coalesce(string_agg(a.k, ','), '') FROM (SELECT json_object_keys(r)::text AS k"
            " FROM (SELECT row_to_json(hh) AS r FROM pgrst_source AS hh LIMIT 1) s) a)"
        )
        rows = "coalesce(string_agg(substring(_postgrest_t::text, 2, length(_postgrest_t::text) - 2), E'\\n'), '')"
        return f"{header} || E'\\n' || {rows}"
    strip = media in ("stripped", "single-stripped")
    if media in ("single", "single-stripped") or single_row:
        element = f"json_agg({value})->0"
        return f"coalesce({f'json_strip_nulls({element})' if strip else element}, 'null')::text"
    return f"coalesce({f'json_strip_nulls(json_agg({value}))' if strip else f'json_agg({value})'}, '[]')::text"


def _envelope(ctes: list[str], source: str, *, total: str, body: str, rows: str = "", inserted: str = "") -> str:
    return (
        f"WITH {', '.join(ctes)} SELECT {total} AS total, {rows or 'pg_catalog.count(_postgrest_t)'} AS n,"
        f" {body} AS body, {inserted or 'null::int'} AS inserted FROM ( {source} ) _postgrest_t"
    )


def build_read(
    snapshot: Snapshot,
    table: Table,
    query: Query,
    *,
    count: bool,
    media: Media,
    max_rows: int | None,
) -> Statement:
    """GET/HEAD on a table or view, with embedded resources."""
    builder = _Builder(snapshot)
    root = plan_read(snapshot, table.name, table.columns, query)
    _restrict(root, max_rows)
    ctes = [f"pgrst_source AS ( {builder.read_sql(root)} )"]
    total = "null::bigint"
    if count:
        ctes.append(f"pgrst_source_count AS ( {builder.count_sql(root)} )")
        total = "(SELECT pg_catalog.count(*) FROM pgrst_source_count)"
    sql = _envelope(ctes, "SELECT * FROM pgrst_source", total=total, body=_body(media))
    return Statement(sql, builder.params.values)


# --- writes -------------------------------------------------------------------------------------------------


def _columns_of(table: Table, keys: Sequence[str]) -> list[Column]:
    missing = [key for key in keys if key not in table.columns]
    if missing:
        raise unknown_payload_column(table.name, missing[0])
    return [table.columns[key] for key in keys]


def _returning(table: Table, query: Query, root: ReadNode, representation: bool) -> str:
    """PostgREST's ``inferColsEmbedNeeds``: what the mutation must return for the select to work."""
    if not representation:
        return "1"
    names = [item.field.name for item in root.select]
    if "*" in names or not (names or root.embeds):
        return f"{qualified(table.name)}.*"
    for embed in root.embeds:
        names.extend(own for own, _ in embed.relationship.columns)
    names.extend(table.primary_key)
    unique = list(dict.fromkeys(names))
    for name in unique:
        root.column(name)
    return ", ".join(f"{qualified(table.name)}.{quote_ident(name)}" for name in unique)


def _json_body(builder: _Builder, payload: Payload, columns: Sequence[Column], *, defaults: bool, one: bool) -> str:
    """PostgREST's ``fromJsonBodyF``: the body's rows as typed columns, defaults filled in when asked."""
    json_type = "jsonb" if defaults else "json"
    sql = f"FROM (SELECT {builder.params.add(payload.raw)}::{json_type} AS json_data) pgrst_payload, "
    source = "pgrst_payload.json_data"
    if defaults:
        pairs = ", ".join(f"{builder.params.add(c.name)}::text, {c.default}" for c in columns if c.default is not None)
        filled = f"jsonb_build_object({pairs})"
        if payload.is_object:
            sql += f"LATERAL (SELECT {filled} || pgrst_payload.json_data AS val) pgrst_json_defs, "
        else:
            sql += (
                f"LATERAL (SELECT jsonb_agg({filled} || elem) AS val"
                " FROM jsonb_array_elements(pgrst_payload.json_data) elem) pgrst_json_defs, "
            )
        source = "pgrst_json_defs.val"
    if not columns:
        rows = "(values(1)) _" if payload.is_object else f"{json_type}_array_elements({source}) _"
        return sql + f"LATERAL (SELECT FROM {rows}) pgrst_body"
    function = f"{json_type}_to_record" if payload.is_object else f"{json_type}_to_recordset"
    names = ", ".join(quote_ident(c.name) for c in columns)
    typed = ", ".join(f"{quote_ident(c.name)} {c.type}" for c in columns)
    limit = " LIMIT 1" if one else ""
    return sql + f"LATERAL (SELECT {names} FROM {function}({source}) AS _({typed}){limit}) pgrst_body"


def _mutation_read(
    snapshot: Snapshot,
    builder: _Builder,
    table: Table,
    query: Query,
    mutation: str,
    *,
    representation: bool,
    media: Media,
    inserted: bool = False,
) -> str:
    """``WITH pgrst_source AS (mutation)`` and the select (with embeds) over the changed rows."""
    root = plan_read(
        snapshot,
        table.name,
        table.columns,
        query,
        root_ref=quote_ident(table.name),
        root_source=f"pgrst_source AS {quote_ident(table.name)}",
        root_filters=False,
    )
    returning = _returning(table, query, root, representation)
    mutation = mutation.replace("{returning}", returning)
    source = builder.read_sql(root) if representation else "SELECT * FROM pgrst_source"
    return _envelope(
        [f"pgrst_source AS ( {mutation} )"],
        source,
        total="null::bigint",
        body=_body(media if representation else "none"),
        inserted=_INSERTED if inserted else "",
    )


def build_insert(
    snapshot: Snapshot,
    table: Table,
    query: Query,
    payload: Payload,
    *,
    representation: bool,
    media: Media,
    resolution: str | None,
    missing_default: bool,
) -> Statement:
    """POST on a table: insert, or upsert with ``resolution`` on ``on_conflict`` (else the primary key)."""
    if query.where_at(()):
        raise parse_error("filters are not supported on insert", "only embedded resources take filters on insert")
    builder = _Builder(snapshot)
    columns = _columns_of(table, payload.keys)
    target = qualified(table.name)
    keys = query.on_conflict if query.on_conflict is not None else table.primary_key
    merge = resolution == "merge-duplicates" and bool(keys)
    body = _json_body(builder, payload, columns, defaults=missing_default, one=False)
    if columns:
        names = ", ".join(quote_ident(c.name) for c in columns)
        values = ", ".join(f"pgrst_body.{quote_ident(c.name)}" for c in columns)
        sql = f"INSERT INTO {target}({names}) SELECT {values} {body}"
    else:
        sql = f"INSERT INTO {target} SELECT {body}"
    if merge:
        # PostgREST counts inserts with a transaction-local setting: up in WHERE, down when a row conflicts.
        sql += " WHERE set_config('pgrst.inserted', (coalesce(" + _INSERTED + ", 0) + 1)::text, true) <> '0'"
    if resolution is not None and keys:
        for key in keys:
            if key not in table.columns:
                raise RestError(400, "42703", f"column {key} does not exist")
        conflict = ", ".join(quote_ident(key) for key in keys)
        if resolution == "ignore-duplicates" or not columns:
            sql += f" ON CONFLICT({conflict}) DO NOTHING"
        else:
            updates = ", ".join(f"{quote_ident(c.name)} = EXCLUDED.{quote_ident(c.name)}" for c in columns)
            sql += (
                f" ON CONFLICT({conflict}) DO UPDATE SET {updates} WHERE set_config('pgrst.inserted',"
                f" (coalesce({_INSERTED}, 0) - 1)::text, true) <> '-1'"
            )
    sql += " RETURNING {returning}"
    statement = _mutation_read(
        snapshot, builder, table, query, sql, representation=representation, media=media, inserted=merge
    )
    return Statement(statement, builder.params.values)


def _mutation_where(builder: _Builder, table: Table, query: Query, *, verb: str) -> list[str]:
    node = ReadNode(relation=table.name, columns=table.columns, ref=qualified(table.name), source="")
    where = [builder.predicate(node, item) for item in query.where_at(())]
    if not where:
        # Supabase loads pg-safeupdate for the API: a write to every row must say so with a filter.
        raise RestError(400, "21000", f"{verb} requires a WHERE clause")
    return where


def _limited(builder: _Builder, table: Table, query: Query, where: list[str]) -> tuple[str, str] | None:
    """PostgREST's limited update/delete: the ordered, paged rows to change, matched by the order columns."""
    limit, offset, order = query.limit_at(()), query.offset_at(()), query.order_at(())
    if limit is None and not offset:
        return None
    if not order:
        raise RestError(
            400,
            "PGRST109",
            "A 'limit' was applied without an explicit 'order'",
            hint="Apply an 'order' using unique column(s)",
        )
    node = ReadNode(
        relation=table.name,
        columns=table.columns,
        ref=qualified(table.name),
        source="",
        order=order,
        limit=limit,
        offset=offset,
    )
    columns = [node.column(item.field.name).name for item in order]
    picked = ", ".join(f"{qualified(table.name)}.{quote_ident(c)}" for c in columns)
    cte = (
        f"pgrst_affected_rows AS (SELECT {picked} FROM {qualified(table.name)} WHERE {' AND '.join(where)}"
        f"{builder.order_sql(node)}{builder.page_sql(node)})"
    )
    match = " AND ".join(
        f"{qualified(table.name)}.{quote_ident(c)} = pgrst_affected_rows.{quote_ident(c)}" for c in columns
    )
    return cte, match


def build_update(
    snapshot: Snapshot,
    table: Table,
    query: Query,
    payload: Payload,
    *,
    representation: bool,
    media: Media,
    missing_default: bool,
) -> Statement:
    """PATCH: set the body's columns on the rows the filters select."""
    builder = _Builder(snapshot)
    columns = _columns_of(table, payload.keys)
    target = qualified(table.name)
    if not columns:
        # Nothing to set: PostgREST answers with no rows, without touching the table.
        sql = f"SELECT {{returning}} FROM {target} WHERE false"
        statement = _mutation_read(snapshot, builder, table, query, sql, representation=representation, media=media)
        return Statement(statement, builder.params.values)
    where = _mutation_where(builder, table, query, verb="UPDATE")
    limited = _limited(builder, table, query, where)
    body = _json_body(builder, payload, columns, defaults=missing_default, one=limited is not None)
    if limited is None:
        assignments = ", ".join(f"{quote_ident(c.name)} = pgrst_body.{quote_ident(c.name)}" for c in columns)
        sql = f"UPDATE {target} SET {assignments} {body} WHERE {' AND '.join(where)} RETURNING {{returning}}"
    else:
        cte, match = limited
        assignments = ", ".join(
            f"{quote_ident(c.name)} = (SELECT {quote_ident(c.name)} FROM pgrst_update_body)" for c in columns
        )
        names = ", ".join(f"pgrst_body.{quote_ident(c.name)}" for c in columns)
        sql = (
            f"WITH pgrst_update_body AS (SELECT {names} {body}), {cte} UPDATE {target} SET {assignments}"
            f" FROM pgrst_affected_rows WHERE {match} RETURNING {{returning}}"
        )
    statement = _mutation_read(snapshot, builder, table, query, sql, representation=representation, media=media)
    return Statement(statement, builder.params.values)


def build_delete(snapshot: Snapshot, table: Table, query: Query, *, representation: bool, media: Media) -> Statement:
    builder = _Builder(snapshot)
    target = qualified(table.name)
    where = _mutation_where(builder, table, query, verb="DELETE")
    limited = _limited(builder, table, query, where)
    if limited is None:
        sql = f"DELETE FROM {target} WHERE {' AND '.join(where)} RETURNING {{returning}}"
    else:
        cte, match = limited
        sql = f"WITH {cte} DELETE FROM {target} USING pgrst_affected_rows WHERE {match} RETURNING {{returning}}"
    statement = _mutation_read(snapshot, builder, table, query, sql, representation=representation, media=media)
    return Statement(statement, builder.params.values)


# --- calls --------------------------------------------------------------------------------------------------


def build_rpc(
    snapshot: Snapshot,
    function: Function,
    arguments: str | None,
    given: Sequence[str],
    query: Query,
    *,
    count: bool,
    media: Media,
    max_rows: int | None,
) -> Statement:
    """Call a function with named arguments; select, filter, order, page and embed a set result like a table.

    ``arguments`` is a JSON object (the POST body as sent, or the GET parameters) and ``given`` the
    argument names it holds; ``json_to_record`` converts them to the parameter types from the catalog.
    """
    builder = _Builder(snapshot)
    call_args = [a for a in function.arguments if a.name in given]
    scalar = function.result in ("scalar", "void")
    name = qualified(function.name)
    if call_args:
        assert arguments is not None
        typed = ", ".join(f"{quote_ident(a.name)} {a.type}" for a in call_args)
        names = ", ".join(quote_ident(a.name) for a in call_args)
        passed = ", ".join(f"{quote_ident(a.name)} := pgrst_body.{quote_ident(a.name)}" for a in call_args)
        call = f"(SELECT {name}({passed}) pgrst_scalar)" if scalar else f"{name}({passed})"
        source = (
            f"FROM (SELECT {builder.params.add(arguments)}::json AS json_data) pgrst_payload,"
            f" LATERAL (SELECT {names} FROM json_to_record(pgrst_payload.json_data) AS _({typed}) LIMIT 1) pgrst_body,"
            f" LATERAL {call} pgrst_call"
        )
    else:
        call = f"(SELECT {name}() pgrst_scalar)" if scalar else f"{name}()"
        source = f"FROM {call} pgrst_call"
    relation = function.table or function.name
    columns = function.columns if not scalar else {}
    root = plan_read(
        snapshot,
        relation,
        columns,
        query,
        root_ref=quote_ident(relation),
        root_source=f"pgrst_source AS {quote_ident(relation)}",
    )
    if scalar and (root.select != [STAR] or root.where or root.order or root.embeds):
        raise parse_error(
            f"{function.name} returns a single value or a set of them: select, filters and order do not apply"
        )
    if function.returns_set:
        _restrict(root, max_rows)
    picked = "pgrst_call.pgrst_scalar" if scalar else "pgrst_call.*"
    ctes = [f"pgrst_source AS ( SELECT {picked} {source} )"]
    total = "null::bigint"
    read = builder.read_sql(root)
    if count:
        ctes.append(f"pgrst_source_count AS ( {builder.count_sql(root)} )")
        total = "(SELECT pg_catalog.count(*) FROM pgrst_source_count)"
    value = "_postgrest_t.pgrst_scalar" if scalar else "_postgrest_t"
    body = _body(media, value=value, single_row=not function.returns_set)
    if media == "csv" or function.result == "void":
        body = _body("none" if function.result == "void" else media, value=value)
    rows = "pg_catalog.count(_postgrest_t)" if function.returns_set else "1"
    sql = _envelope(ctes, read, total=total, body=body, rows=rows)
    return Statement(sql, builder.params.values)
