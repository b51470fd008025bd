"""SQL for a parsed request. Pure: syntax tree plus catalog entries in, SQL text with ``$n`` parameters out.

Rules that keep this safe: every identifier is looked up in the catalog and double-quoted; every value
from the request is a bound parameter, sent as text (or JSON) and cast to the column's catalog type, so
a malformed value fails in PostgreSQL's input function (22P02) instead of changing the statement. Type
names and defaults in the text come only from the catalog.

Every statement returns one row ``(total, n, body)``: the total count when asked for (else NULL), the
number of rows, and the JSON body built by PostgreSQL (``json_agg``), so types render exactly as
PostgREST renders them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devstack.gateway.rest.catalog import SCHEMA, Column, Function, Table
from devstack.gateway.rest.errors import parse_error, unknown_column, unknown_payload_column
from devstack.gateway.rest.parser import Condition, Logic, Node, OrderItem, Query, SelectItem

_COMPARISONS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_PATTERNS = {"like": "like", "ilike": "ilike", "match": "~", "imatch": "~*"}


@dataclass
class Statement:
    sql: str
    params: list[Any] = field(default_factory=list)


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def quote_ident(name: str) -> str:
    """A double-quoted identifier. Names reach here only after a catalog lookup; quoting is the second fence."""
    if "\x00" in name:
        raise parse_error("identifiers cannot contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def qualified(name: str) -> str:
    return f"{quote_ident(SCHEMA)}.{quote_ident(name)}"


def _column(columns: Mapping[str, Column], relation: str, name: str) -> Column:
    found = columns.get(name)
    if found is None:
        raise unknown_column(relation, name)
    return found


def _output(columns: Mapping[str, Column], relation: str, select: Sequence[SelectItem], alias: str) -> str:
    parts = []
    for item in select:
        if item.column == "*":
            parts.append(f"{alias}.*")
            continue
        column = _column(columns, relation, item.column)
        ref = f"{alias}.{quote_ident(column.name)}"
        parts.append(f"{ref} as {quote_ident(item.alias)}" if item.alias else ref)
    return ", ".join(parts)


def _where(nodes: Iterable[Node], columns: Mapping[str, Column], relation: str, params: _Params, alias: str) -> str:
    rendered = [_node(node, columns, relation, params, alias) for node in nodes]
    return " and ".join(rendered) if rendered else "true"


def _node(node: Node, columns: Mapping[str, Column], relation: str, params: _Params, alias: str) -> str:
    if isinstance(node, Logic):
        joined = f" {node.op} ".join(_node(item, columns, relation, params, alias) for item in node.items)
        return f"not ({joined})" if node.negated else f"({joined})"
    return _condition(node, columns, relation, params, alias)


def _condition(cond: Condition, columns: Mapping[str, Column], relation: str, params: _Params, alias: str) -> str:
    column = _column(columns, relation, cond.column)
    ref = f"{alias}.{quote_ident(column.name)}"
    if cond.operator == "is":
        # The keyword comes from the parser's fixed set (null, true, false, unknown), never from the request.
        sql = f"{ref} is {cond.value}"
    elif cond.operator == "in":
        sql = f"{ref} = any({params.add(list(cond.value))}::text[]::{column.type}[])"
    elif cond.operator in _PATTERNS:
        sql = f"{ref}::text {_PATTERNS[cond.operator]} {params.add(cond.value)}::text"
    else:
        sql = f"{ref} {_COMPARISONS[cond.operator]} {params.add(cond.value)}::text::{column.type}"
    return f"not ({sql})" if cond.negated else sql


def _order(items: Sequence[OrderItem], columns: Mapping[str, Column], relation: str, alias: str) -> str:
    if not items:
        return ""
    parts = []
    for item in items:
        column = _column(columns, relation, item.column)
        text = f"{alias}.{quote_ident(column.name)}{' desc' if item.descending else ''}"
        if item.nulls:
            text += f" nulls {item.nulls}"
        parts.append(text)
    return " order by " + ", ".join(parts)


def _page(query: Query, params: _Params, max_rows: int | None) -> str:
    limit = query.limit
    if max_rows is not None:
        limit = max_rows if limit is None else min(limit, max_rows)
    # Always bound, NULL meaning "no limit": one statement text (one prepared statement) for every page.
    return f" limit {params.add(limit)}::bigint offset {params.add(query.offset or 0)}::bigint"


def _envelope(source: str, *, total: str | None, head: bool, value: str = "_row") -> str:
    body = "null::text" if head else f"coalesce(json_agg({value}), '[]')::text"
    return f"select {total or 'null::bigint'} as total, count(*) as n, {body} as body from {source}"


def build_read(table: Table, query: Query, *, count: bool, head: bool, max_rows: int | None) -> Statement:
    """GET/HEAD on a table or view."""
    params = _Params()
    src = f"{qualified(table.name)} as _src"
    where = _where(query.where, table.columns, table.name, params, "_src")
    output = _output(table.columns, table.name, query.select, "_src")
    order = _order(query.order, table.columns, table.name, "_src")
    page = _page(query, params, max_rows)
    inner = f"(select {output} from {src} where {where}{order}{page}) as _row"
    total = f"(select count(*) from {src} where {where})" if count else None
    return Statement(_envelope(inner, total=total, head=head), params.values)


def _reject_read_parts(query: Query, what: str) -> None:
    if query.limit is not None or query.offset is not None or query.order:
        raise parse_error(f"limit, offset and order are not supported on {what} by the devstack gateway")


def _record_definition(columns: Sequence[Column]) -> str:
    return ", ".join(f"{quote_ident(c.name)} {c.type}" for c in columns)


def _returning(table: Table, query: Query, representation: bool) -> str:
    return _output(table.columns, table.name, query.select, "_src") if representation else "1"


def _written(mutation: str, *, count: bool, representation: bool) -> str:
    """Wrap a data-modifying statement so its rows come back as ``(total, n, body)``."""
    total = "count(*)" if count else None
    return f"with _written as ({mutation}) " + _envelope(
        "_written", total=total, head=not representation, value="_written"
    )


def build_insert(
    table: Table,
    query: Query,
    rows: Sequence[Mapping[str, Any]],
    *,
    representation: bool,
    count: bool,
    resolution: str | None,
    missing_default: bool,
) -> list[Statement]:
    """POST on a table: insert, or upsert with ``resolution``. Several statements only with ``missing=default``."""
    if query.where:
        raise parse_error("filters are not supported on insert")
    _reject_read_parts(query, "insert")
    if query.columns is not None:
        names = list(query.columns)
        for name in names:
            if name not in table.columns:
                raise unknown_payload_column(table.name, name)
    else:
        seen: dict[str, None] = {}  # the union of keys, in the order first seen
        for row in rows:
            for key in row:
                if key not in table.columns:
                    raise unknown_payload_column(table.name, key)
                seen[key] = None
        names = list(seen)
    if not missing_default:
        batches = [(names, list(rows))]
    else:
        # Absent keys take the column default: rows with the same keys go in one statement, in order.
        batches = []
        for row in rows:
            present = [n for n in names if n in row]
            if batches and batches[-1][0] == present:
                batches[-1][1].append(row)
            else:
                batches.append((present, [row]))
    # A merge updates only the columns a row brought, never ones it left to their defaults.
    return [
        _insert_statement(
            table,
            query,
            cols,
            batch,
            _conflict_clause(table, query, cols, resolution),
            representation=representation,
            count=count,
        )
        for cols, batch in batches
    ]


def _insert_statement(
    table: Table,
    query: Query,
    names: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    conflict: str,
    *,
    representation: bool,
    count: bool,
) -> Statement:
    params = _Params()
    payload = params.add(json.dumps([{n: row.get(n) for n in names} for row in rows]))
    target = f"insert into {qualified(table.name)} as _src"
    returning = _returning(table, query, representation)
    if names:
        columns = [table.columns[n] for n in names]
        column_list = ", ".join(quote_ident(n) for n in names)
        values = ", ".join(f"_r.{quote_ident(n)}" for n in names)
        source = f"json_to_recordset({payload}::json) as _r({_record_definition(columns)})"
        mutation = f"{target} ({column_list}) select {values} from {source}{conflict} returning {returning}"
    else:
        # Objects without keys: one row of defaults per object.
        source = f"json_array_elements({payload}::json) as _r"
        mutation = f"{target} select from {source}{conflict} returning {returning}"
    return Statement(_written(mutation, count=count, representation=representation), params.values)


def _conflict_clause(table: Table, query: Query, names: Sequence[str], resolution: str | None) -> str:
    if resolution is None:
        if query.on_conflict is not None:
            # on_conflict without a resolution: PostgREST merges.
            resolution = "merge-duplicates"
        else:
            return ""
    keys = query.on_conflict if query.on_conflict is not None else table.primary_key
    if not keys:
        raise parse_error(f"upsert on {table.name} needs on_conflict: the table has no primary key")
    for key in keys:
        _column(table.columns, table.name, key)
    target = ", ".join(quote_ident(k) for k in keys)
    if resolution == "ignore-duplicates" or not names:
        return f" on conflict ({target}) do nothing"
    updates = ", ".join(f"{quote_ident(n)} = excluded.{quote_ident(n)}" for n in names)
    return f" on conflict ({target}) do update set {updates}"


def build_update(
    table: Table, query: Query, values: Mapping[str, Any], *, representation: bool, count: bool
) -> Statement | None:
    """PATCH: set the body's columns on the rows the filters select. None when the body sets nothing."""
    _reject_read_parts(query, "update")
    for key in values:
        if key not in table.columns:
            raise unknown_payload_column(table.name, key)
    if not values:
        return None
    params = _Params()
    payload = params.add(json.dumps(dict(values)))
    columns = [table.columns[k] for k in values]
    assignments = ", ".join(f"{quote_ident(c.name)} = _r.{quote_ident(c.name)}" for c in columns)
    where = _where(query.where, table.columns, table.name, params, "_src")
    returning = _returning(table, query, representation)
    mutation = (
        f"update {qualified(table.name)} as _src set {assignments}"
        f" from json_to_record({payload}::json) as _r({_record_definition(columns)})"
        f" where {where} returning {returning}"
    )
    return Statement(_written(mutation, count=count, representation=representation), params.values)


def build_delete(table: Table, query: Query, *, representation: bool, count: bool) -> Statement:
    _reject_read_parts(query, "delete")
    params = _Params()
    where = _where(query.where, table.columns, table.name, params, "_src")
    returning = _returning(table, query, representation)
    mutation = f"delete from {qualified(table.name)} as _src where {where} returning {returning}"
    return Statement(_written(mutation, count=count, representation=representation), params.values)


def build_rpc(
    function: Function,
    arguments: Mapping[str, Any],
    query: Query,
    *,
    count: bool,
    head: bool,
    max_rows: int | None,
) -> Statement:
    """Call a function with named arguments; filter, order and page a set result like a table.

    Arguments travel as one JSON object and are converted by ``json_to_record`` to the parameter types
    from the catalog, whether they came from a JSON body or (as text) from the query string.
    """
    params = _Params()
    given = [a for a in function.arguments if a.name in arguments]
    call_args, args_from = "", None
    if given:
        payload = params.add(json.dumps({a.name: arguments[a.name] for a in given}))
        definition = ", ".join(f"{quote_ident(a.name)} {a.type}" for a in given)
        call_args = ", ".join(f"{quote_ident(a.name)} => _a.{quote_ident(a.name)}" for a in given)
        args_from = f"json_to_record({payload}::json) as _a({definition})"
    call = f"{qualified(function.name)}({call_args})"
    if function.result == "void" or (function.result == "scalar" and not function.returns_set):
        if query.where or query.order or query.limit is not None or query.offset is not None:
            raise parse_error(f"{function.name} returns a single value: filters, order and paging do not apply")
        # void has a text form (empty) but no JSON one; the handler answers 204 for it anyway.
        body = f"{call}::text" if function.result == "void" else f"to_json({call})::text"
        from_ = f" from {args_from}" if args_from else ""
        return Statement(f"select null::bigint as total, 1::bigint as n, {body} as body{from_}", params.values)
    columns = function.columns
    if function.result == "scalar":
        # A set of scalars: no columns to select or filter, only paging.
        if query.where or query.order or query.select != (SelectItem("*"),):
            raise parse_error(f"{function.name} returns scalars: select, filters and order do not apply")
        output, value = "_src as _value", "_row._value"
    else:
        output, value = _output(columns, function.name, query.select, "_src"), "_row"
    src = f"{args_from} cross join lateral {call} as _src" if args_from else f"{call} as _src"
    where = _where(query.where, columns, function.name, params, "_src")
    order = _order(query.order, columns, function.name, "_src")
    page = _page(query, params, max_rows if function.returns_set else None)
    inner = f"(select {output} from {src} where {where}{order}{page}) as _row"
    total = f"(select count(*) from {src} where {where})" if count else None
    return Statement(_envelope(inner, total=total, head=head, value=value), params.values)
