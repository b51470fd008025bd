"""A join's ``postgres_changes`` bindings, checked against the database when the channel joins.

As in Realtime, a binding naming a table that does not exist, a filter on a missing column, or a filter
value that does not cast to the column's type is refused; unlike Realtime, which accepts the join and
pushes a ``system`` error afterwards, the refusal is the join's error reply, so ``subscribe()`` reports it.
A table that exists but is not published is accepted: it delivers once it is added to the publication.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from devstack.gateway.realtime import catalog as catalog_module
from devstack.gateway.realtime.catalog import Catalog, ColumnInfo, TableInfo
from devstack.gateway.realtime.filters import BoundFilter, FilterError
from devstack.gateway.realtime.protocol import BindingRequest, JoinError, binding_id


@dataclass(frozen=True, slots=True)
class Binding:
    """A ``postgres_changes`` binding of a joined channel.

    Attributes:
        id: What the client routes by.
        request: The binding as the client asked for it.
        table: The table when the binding names one (its filters were bound to its columns).
        filters: Conditions on the row, cast to the columns' types.
    """

    id: int
    request: BindingRequest
    table: TableInfo | None
    filters: tuple[BoundFilter, ...]

    def covers(self, schema: str, table: str) -> bool:
        request = self.request
        if request.schema != "*" and request.schema != schema:
            return False
        return request.table is None or request.table == table


class Binder:
    """Turns binding requests into bindings, with the admin pool for catalog look-ups and casts."""

    def __init__(self, admin_pool: asyncpg.Pool, catalog: Callable[[], Catalog]) -> None:
        self._pool = admin_pool
        self._catalog = catalog

    async def bind(self, requests: tuple[BindingRequest, ...]) -> list[Binding]:
        """The bindings of a join, with ids unique in the channel; ``JoinError`` for a bad one."""
        taken: set[int] = set()
        bindings = []
        for index, request in enumerate(requests):
            where = f"postgres_changes[{index}]"
            table = None
            filters: tuple[BoundFilter, ...] = ()
            if request.table is not None and request.schema != "*":
                table = await self._describe(request.schema, request.table)
                if table is None:
                    raise JoinError(
                        f"Unable to subscribe to changes with given parameters: {where}:"
                        f" relation {request.schema}.{request.table} does not exist"
                    )
                filters = await self._bind_filters(where, request, table)
                missing = [name for name in request.select or () if table.column(name) is None]
                if missing:
                    raise JoinError(f"InvalidJoinPayload: {where}.select: no column {missing[0]!r}")
            elif request.filters:
                raise JoinError(f"InvalidJoinPayload: {where}: a filter needs an explicit schema")
            bindings.append(Binding(binding_id(request.raw, taken), request, table, filters))
        return bindings

    async def _describe(self, schema_name: str, table_name: str) -> TableInfo | None:
        catalog = self._catalog()
        known = catalog.published.get((schema_name, table_name))
        if known is not None:
            return known
        async with self._pool.acquire() as conn:
            return await catalog_module.describe(conn, schema_name, table_name, catalog.types)

    async def _bind_filters(self, where: str, request: BindingRequest, table: TableInfo) -> tuple[BoundFilter, ...]:
        bound = []
        for spec in request.filters:
            column = table.column(spec.column)
            if column is None:
                raise JoinError(f"InvalidJoinPayload: {where}: invalid column for filter {spec.column!r}")
            try:
                async with self._pool.acquire() as conn:
                    # Postgres casts the operands, as Realtime does, to the column's type with its modifier
                    # (so they read as the column stores them: char(2) padded, numeric(5,2) rounded); both
                    # type names come from the catalog (format_type, quote_ident), so they are valid SQL.
                    row = await conn.fetchrow(
                        f"select array(select (v::text)::{column.cast_type}::text from unnest($1::text[]) as v),"  # noqa: S608
                        f" array(select (v::text)::{column.plain_cast_type}::text from unnest($1::text[]) as v)",
                        list(spec.values),
                    )
                assert row is not None
                canonical, plain = row
                _refuse_cut_strings(column, canonical, plain)
                bound.append(BoundFilter.bind(spec, column.base_typname, tuple(canonical)))
            except (asyncpg.DataError, asyncpg.SyntaxOrAccessError) as error:
                raise JoinError(
                    f"InvalidJoinPayload: {where}: invalid value for filter on {spec.column!r}: {error}"
                ) from None
            except FilterError as error:
                raise JoinError(f"InvalidJoinPayload: {where}: {error}") from None
        return tuple(bound)


_STRING_TYPES = frozenset({"bpchar", "varchar", "bit", "varbit"})


def _refuse_cut_strings(column: ColumnInfo, canonical: list[str], plain: list[str]) -> None:
    """An explicit cast silently cuts a string to the column's length (``DZX`` to ``DZ`` for char(2)),
    which would then match rows the filter does not name; refuse it as storing it would be refused."""
    if column.typname not in _STRING_TYPES:
        return
    for cut, whole in zip(canonical, plain, strict=True):
        if cut.rstrip(" ") != whole.rstrip(" "):
            raise FilterError(f"value too long for type {column.cast_type}: {whole!r}")
