"""Who may see a change: decided by Postgres, under the subscriber's own role and JWT claims.

Like Supabase Realtime, a row change goes to a subscriber only if, as that subscriber's role with its
claims in ``request.jwt.claims``, selecting the row by primary key finds it: row level security and
grants are evaluated by Postgres, never re-implemented here. ``_realtime.visible_rows`` does the role
switch and the lookup for many rows and several subscriber groups in one round trip; it runs on the
``authenticator`` pool (which may only become the API roles) inside the statement's own transaction,
so the role ends with it.

Deleted rows cannot be looked up; a DELETE goes to subscribers whose role may select the table's primary
key, with only the primary key in ``old_record``. Column privileges (from table or column grants) are
cached per role until the catalog changes (the DDL event trigger in ``schema`` says when, GRANT and
REVOKE included); records leave out the columns a role may not select.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from devstack.gateway.realtime.catalog import TableInfo

_VISIBLE_SQL = "select grp, idx from _realtime.visible_rows($1::text[], $2::text[], $3::oid, $4::jsonb)"

_PRIVILEGES_SQL = """
select coalesce(array(
         select a.attname::text from pg_catalog.pg_attribute a
          where a.attrelid = $2::oid and a.attnum > 0 and not a.attisdropped
            and pg_catalog.has_column_privilege($1, $2::oid, a.attnum, 'SELECT')), '{}') as columns
"""


@dataclass(frozen=True, slots=True)
class Privileges:
    """The columns of a table a role may select (through a table grant or column grants)."""

    columns: frozenset[str]

    def may_see(self, table: TableInfo) -> bool:
        """Whether the role may see changes of ``table`` at all: it must be able to select the primary
        key (any column, for a table without one), as Realtime requires."""
        if table.pk:
            return all(column in self.columns for column in table.pk)
        return bool(self.columns)


NO_PRIVILEGES = Privileges(frozenset())


class Authorizer:
    """Visibility checks on the API pool; privilege look-ups on the admin pool, cached."""

    def __init__(self, api_pool: asyncpg.Pool, admin_pool: asyncpg.Pool) -> None:
        self._api = api_pool
        self._admin = admin_pool
        self._privileges: dict[tuple[str, int], Privileges] = {}

    def forget_privileges(self) -> None:
        """Drop cached privileges (the catalog changed)."""
        self._privileges.clear()

    async def visible(
        self, groups: list[tuple[str, str]], table: TableInfo, keys: list[dict[str, str]]
    ) -> dict[tuple[str, str], set[int]]:
        """For each ``(role, claims json)`` group, the indices into ``keys`` (primary key column →
        text) of the rows it may select; one round trip for all of them."""
        result: dict[tuple[str, str], set[int]] = {group: set() for group in groups}
        if not keys or not groups:
            return result
        async with self._api.acquire() as conn:
            rows = await conn.fetch(
                _VISIBLE_SQL,
                [role for role, _ in groups],
                [claims for _, claims in groups],
                table.oid,
                json.dumps(keys),
            )
        for group_number, key_number in rows:
            result[groups[group_number - 1]].add(key_number - 1)
        return result

    async def privileges(self, role: str, table: TableInfo) -> Privileges:
        """Which columns of ``table`` ``role`` may select (cached)."""
        key = (role, table.oid)
        cached = self._privileges.get(key)
        if cached is not None:
            return cached
        async with self._admin.acquire() as conn:
            row = await conn.fetchrow(_PRIVILEGES_SQL, role, table.oid)
        assert row is not None
        result = Privileges(frozenset(row["columns"]))
        self._privileges[key] = result
        return result

    async def can_become(self, role: str) -> bool:
        """Whether the API login may switch to ``role`` (an unknown role cannot be)."""
        async with self._api.acquire() as conn:
            allowed = await conn.fetchval(
                "select pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')"
                " from pg_catalog.pg_roles r where r.rolname = $1",
                role,
            )
        return bool(allowed)
