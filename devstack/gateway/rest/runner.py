"""Run a request's statement on the ``api_pool`` as the caller, committing in the statement's own round trip.

Before the statement, one round trip sets what PostgREST sets per request (search path, the settings of
the role switched to (``alter role ... set statement_timeout``), the role, the JWT claims, method, path
and headers), so PostgreSQL applies privileges, row level security and the role's timeouts.

Then the statement runs on its own, outside an explicit transaction: PostgreSQL wraps it in an implicit
one that commits when the statement completes, in the same round trip. A row lock taken by a trigger
(the chat row behind every message insert) is therefore held for the statement and its commit only,
never across a further network round trip for COMMIT. Reads get the same with
``default_transaction_read_only`` set for them, so a write attempted by a read is refused (25006) as in
PostgREST's read-only transactions. The settings are session-level; the pool's reset
(``reset_connection``) clears them when the connection goes back, off the latency path.

What must decide between commit and rollback after seeing the result (``single()`` on a write,
``Prefer: max-affected`` with ``handling=strict``, ``Prefer: tx=rollback``) runs in an explicit
transaction instead, with transaction-local settings, exactly as PostgREST runs every request.

When the database cannot be reached, or the connection breaks under a request, the answer is PostgREST's
(``PostgREST.Error``): 503 ``PGRST000`` "Database connection error. Retrying the connection." when no
connection could be had (refused, "the database system is starting up / shutting down", too many
connections), 503 ``PGRST001`` "Database client error. Retrying the connection." when the connection
broke under the statement; errors PostgreSQL itself sent keep their SQLSTATE and PostgREST's status
(``57P01``, a fast shutdown ending the session, is 503). Either way the pool is flushed, as PostgREST's
connection worker flushes its pool, so no connection a restart left dead serves a later request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from devstack.gateway.rest.catalog import Catalog
from devstack.gateway.rest.context import Caller
from devstack.gateway.rest.errors import RestError, from_postgres
from devstack.gateway.rest.sql import Statement

log = logging.getLogger(__name__)

SEARCH_PATH = "public, extensions"
# Errors that may mean the schema changed under the cache (a migration ran): reload on the next miss.
_CATALOG_ERRORS = frozenset({"42703", "42P01", "42883", "42804"})
_finishing: set[asyncio.Task[None]] = set()


@dataclass
class Result:
    """The ``(total, n, body, inserted)`` row every statement returns (see ``sql``)."""

    total: int | None
    rows: int
    body: str | None
    inserted: int | None = None


@dataclass(frozen=True)
class RequestInfo:
    """What PostgREST exposes about the HTTP request to SQL (``request.method``, ``.path``, ``.headers``)."""

    method: str
    path: str
    headers: Mapping[str, str]
    cookies: Mapping[str, str]


def _caller_sql(
    caller: Caller, settings: tuple[tuple[str, str], ...], info: RequestInfo, *, local: bool, readonly: bool
) -> tuple[str, list[str]]:
    """One ``select set_config(...), ...`` for everything a request sets, with its parameters.

    The role's own settings go before the role, as PostgREST orders them (a setting granted to the
    login role with ``GRANT SET`` must be set before switching).
    """
    scope = "true" if local else "false"
    params: list[str] = []

    def setting(name: str, value: str) -> str:
        # Names are this module's constants; values are parameters.
        params.append(value)
        return f"set_config('{name}', ${len(params)}, {scope})"

    parts = [setting("search_path", SEARCH_PATH)]
    for key, value in settings:
        params.append(key)
        params.append(value)
        parts.append(f"set_config(${len(params) - 1}, ${len(params)}, {scope})")
    parts.append(setting("role", caller.role))
    parts.append(setting("request.jwt.claims", json.dumps(caller.claims)))
    parts.append(setting("request.method", info.method))
    parts.append(setting("request.path", info.path))
    parts.append(setting("request.headers", json.dumps(dict(info.headers))))
    parts.append(setting("request.cookies", json.dumps(dict(info.cookies))))
    if readonly and not local:
        parts.append("set_config('default_transaction_read_only', 'on', false)")
    return "select " + ", ".join(parts), params


async def execute(
    pool: asyncpg.Pool,
    catalog: Catalog,
    caller: Caller,
    statement: Statement,
    info: RequestInfo,
    *,
    readonly: bool,
    check: Callable[[Result], None] | None = None,
    rollback: bool = False,
) -> Result:
    """Run ``statement`` as the caller.

    ``check`` looks at the result before the transaction ends and raises to roll a write back (then the
    statement runs in an explicit transaction); ``rollback`` always rolls back (``Prefer: tx=rollback``).
    """
    explicit = not readonly and (check is not None or rollback)
    try:
        conn = await pool.acquire()
    except _CONNECT_ERRORS as error:
        # Refused, "the database system is starting up" (57P03), too many connections: no session at all.
        _in_background(_flush(pool))
        raise connection_error(error, acquired=False) from None
    settings = catalog.role_settings(caller.role)
    try:
        if explicit:
            result = await _in_transaction(conn, caller, settings, info, statement, check, rollback)
        else:
            set_sql, set_params = _caller_sql(caller, settings, info, local=False, readonly=readonly)
            await conn.execute(set_sql, *set_params)
            result = _result(await conn.fetchrow(statement.sql, *statement.params))
            if check is not None:
                check(result)
    except asyncpg.PostgresError as error:
        if isinstance(error, asyncpg.PostgresConnectionError) or _is_closed(conn):
            _in_background(_flush(pool))
        if isinstance(error, asyncpg.PostgresConnectionError):
            # Class 08: raised by asyncpg itself when the socket closed under the statement ("connection
            # was closed in the middle of operation"), not sent by the server: PostgREST's client error.
            raise connection_error(error, acquired=True) from None
        if error.sqlstate in _CATALOG_ERRORS:
            catalog.invalidate()
        raise from_postgres(error, authenticated=caller.authenticated) from None
    except (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError) as error:
        if isinstance(error, asyncpg.InterfaceError) and not _is_closed(conn):
            raise  # a statement that does not fit its parameters is a bug here: 500, not a retryable 503
        # The connection broke under the statement: a socket error, a closed connection, or a protocol
        # left half way by a server that went away ("cannot switch to state 12"). It must not go back.
        _terminate(conn)
        _in_background(_flush(pool))
        raise connection_error(error, acquired=True) from None
    finally:
        _in_background(_release(pool, conn))
    return result


async def _in_transaction(
    conn: asyncpg.pool.PoolConnectionProxy,
    caller: Caller,
    settings: tuple[tuple[str, str], ...],
    info: RequestInfo,
    statement: Statement,
    check: Callable[[Result], None] | None,
    rollback: bool,
) -> Result:
    transaction = conn.transaction()
    await transaction.start()
    try:
        set_sql, set_params = _caller_sql(caller, settings, info, local=True, readonly=False)
        await conn.execute(set_sql, *set_params)
        result = _result(await conn.fetchrow(statement.sql, *statement.params))
        if check is not None:
            check(result)
        if rollback:
            # As PostgREST does before it rolls back: deferred constraints are checked, and reported.
            await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
    except BaseException:
        await _rollback(conn, transaction)
        raise
    if rollback:
        await transaction.rollback()
    else:
        await transaction.commit()
    return result


async def reset_connection(conn: asyncpg.Connection) -> None:
    """The API pool's reset: the role too, which ``RESET ALL`` leaves alone, in the same round trip.

    Without it a connection would go back to the pool still acting as the last request's role, and the
    next user of the pool that does not set a role itself (realtime's visibility checks) would run as it.
    """
    await conn.execute("RESET ROLE;\n" + conn.get_reset_query())


def _result(row: asyncpg.Record | None) -> Result:
    assert row is not None  # every statement is an aggregate: exactly one row
    return Result(row["total"], row["n"], row["body"], row["inserted"])


def singular(rows: int) -> RestError:
    return RestError(
        406,
        "PGRST116",
        "JSON object requested, multiple (or no) rows returned",
        details=f"The result contains {rows} rows",
    )


# What a failed ``pool.acquire()`` raises: the socket (refused, reset, timed out), or the server refusing
# the session (57P03 "the database system is starting up / shutting down", 53300 too many connections).
_CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


def connection_error(error: BaseException, *, acquired: bool) -> RestError:
    """PostgREST's answer when the database cannot be used: 503 ``PGRST000`` (no connection could be had)
    or ``PGRST001`` (the connection broke under the request), with the driver's words as ``details``."""
    log.warning("database connection problem: %s: %s", type(error).__name__, error)
    if acquired:
        return RestError(503, "PGRST001", "Database client error. Retrying the connection.", details=str(error))
    return RestError(503, "PGRST000", "Database connection error. Retrying the connection.", details=str(error))


def _is_closed(conn: asyncpg.pool.PoolConnectionProxy) -> bool:
    """Whether the connection is gone. When its socket closes, the pool takes the connection back from the
    proxy at once, and the proxy then refuses every call (``InterfaceError``): that is closed too."""
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True


def _terminate(conn: asyncpg.pool.PoolConnectionProxy) -> None:
    """Close a connection left in an unknown state, so the pool replaces it (a no-op when it is gone)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


async def _flush(pool: asyncpg.Pool) -> None:
    """Replace every pooled connection on its next use: after a restart the idle ones are dead too."""
    try:
        await pool.expire_connections()
    except Exception as error:  # the pool may be closing at shutdown
        log.warning("flushing the pool failed: %s", error)


async def _rollback(conn: asyncpg.pool.PoolConnectionProxy, transaction: Any) -> None:
    """Roll back; a connection that cannot is closed by the pool when it is released."""
    try:
        if not conn.is_closed() and conn.is_in_transaction():
            await transaction.rollback()
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        log.warning("rollback failed: %s", error)


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
    """Wait for deferred releases (at shutdown, before the pool closes)."""
    while _finishing:
        await asyncio.gather(*list(_finishing), return_exceptions=True)
