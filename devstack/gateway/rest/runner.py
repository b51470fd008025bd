"""Run a request's statements in one transaction on the ``api_pool``, as the caller.

The transaction first switches to the caller's role and publishes the JWT claims (one round trip for
``set_config``), so PostgreSQL applies privileges and row level security. What follows the last
statement is off the latency path: a read-only transaction has nothing left to decide once its rows are
read, so its COMMIT and the pool's connection reset run after the response is on its way; a write
commits before the response (the client must not see uncommitted rows) and only the reset is deferred.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.transaction import Transaction

from devstack.gateway.rest.catalog import Catalog
from devstack.gateway.rest.context import Caller
from devstack.gateway.rest.errors import RestError, from_postgres
from devstack.gateway.rest.sql import Statement

log = logging.getLogger(__name__)

SET_CALLER = (
    "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),"
    " set_config('search_path', 'public, extensions', true)"
)
# Errors that may mean the schema changed under the cache (a migration ran): reload on the next miss.
_CATALOG_ERRORS = frozenset({"42703", "42P01", "42883", "42804"})
_finishing: set[asyncio.Task[None]] = set()


@dataclass
class Result:
    """The ``(total, n, body)`` row every statement returns (see ``sql``)."""

    total: int | None
    rows: int
    body: str | None


async def execute(
    pool: asyncpg.Pool,
    catalog: Catalog,
    caller: Caller,
    statements: Sequence[Statement],
    *,
    readonly: bool,
    single: bool = False,
) -> Result:
    """Run ``statements`` in one transaction as the caller; several results are concatenated.

    With ``single`` anything but exactly one row is PGRST116, raised before COMMIT so that a write is
    rolled back, as PostgREST does.
    """
    try:
        conn = await pool.acquire()
    except (asyncpg.InterfaceError, OSError) as error:
        raise _connection_error(error) from None
    transaction = conn.transaction(readonly=readonly)
    try:
        await transaction.start()
        await conn.execute(SET_CALLER, caller.role, json.dumps(caller.claims))
        results = []
        for statement in statements:
            row = await conn.fetchrow(statement.sql, *statement.params)
            assert row is not None  # every statement is an aggregate: exactly one row
            results.append(Result(row["total"], row["n"], row["body"]))
        merged = _merge(results)
        if single and merged.rows != 1:
            raise singular(merged.rows)
        if not readonly:
            await transaction.commit()
    except BaseException as error:
        await _abandon(pool, conn, transaction)
        if isinstance(error, asyncpg.PostgresError):
            if error.sqlstate in _CATALOG_ERRORS:
                catalog.invalidate()
            raise from_postgres(error, authenticated=caller.authenticated) from None
        if isinstance(error, (asyncpg.InterfaceError, OSError)):
            raise _connection_error(error) from None
        raise
    _in_background(_finish(pool, conn, transaction if readonly else None))
    return merged


def singular(rows: int) -> RestError:
    return RestError(
        406,
        "PGRST116",
        "Cannot coerce the result to a single JSON object",
        details=f"The result contains {rows} rows",
    )


def _connection_error(error: BaseException) -> RestError:
    log.warning("database connection problem: %s", error)
    return RestError(503, "PGRST001", "Database client error. Retrying the connection.")


def _merge(results: list[Result]) -> Result:
    if len(results) == 1:
        return results[0]
    bodies = [json.loads(r.body) for r in results if r.body is not None]
    body = json.dumps([row for rows in bodies for row in rows]) if bodies else None
    totals = [r.total for r in results if r.total is not None]
    return Result(sum(totals) if totals else None, sum(r.rows for r in results), body)


async def _abandon(pool: asyncpg.Pool, conn: asyncpg.pool.PoolConnectionProxy, transaction: Transaction) -> None:
    """Roll back and return the connection; a connection that cannot roll back is closed by the pool."""
    try:
        if not conn.is_closed() and conn.is_in_transaction():
            await transaction.rollback()
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        log.warning("rollback failed: %s", error)
    finally:
        _in_background(_release(pool, conn))


async def _finish(pool: asyncpg.Pool, conn: asyncpg.pool.PoolConnectionProxy, transaction: Transaction | None) -> None:
    try:
        if transaction is not None:
            await transaction.commit()
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        log.warning("commit of a read-only transaction failed: %s", error)
    finally:
        await _release(pool, conn)


async def _release(pool: asyncpg.Pool, conn: asyncpg.pool.PoolConnectionProxy) -> None:
    try:
        await pool.release(conn)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        log.warning("releasing a connection failed: %s", error)


def _in_background(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` without waiting for it, keeping a reference so it is not collected midway."""
    task = asyncio.ensure_future(coroutine)
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


async def drain() -> None:
    """Wait for deferred commits and releases (at shutdown, before the pool closes)."""
    while _finishing:
        await asyncio.gather(*list(_finishing), return_exceptions=True)
