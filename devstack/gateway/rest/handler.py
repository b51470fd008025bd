"""The ``/rest/v1`` endpoints: PostgREST-compatible reads, writes and RPC over the ``api_pool``.

Each request runs in one transaction on an ``authenticator`` connection that first switches to the
caller's role and publishes the JWT claims (``set_config(..., true)``, one round trip), so row level
security and privileges are PostgreSQL's to enforce. Reads run ``READ ONLY``, as in PostgREST.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from devstack.gateway.context import GatewayContext, context_of
from devstack.gateway.rest import sql
from devstack.gateway.rest.catalog import SCHEMA, Catalog, Function, Table
from devstack.gateway.rest.context import (
    OBJECT_MEDIA_TYPE,
    Caller,
    caller_of,
    check_profile,
    json_body,
    wants_object,
)
from devstack.gateway.rest.errors import RestError, bad_body, unknown_function, unknown_table
from devstack.gateway.rest.parser import Preferences, Query, parse_prefer, parse_query
from devstack.gateway.rest.runner import Result, drain, execute

log = logging.getLogger(__name__)

_METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"]
_catalogs: dict[int, Catalog] = {}


def routes() -> list[BaseRoute]:
    return [
        Route("/rpc/{name}", _endpoint(_rpc), methods=_METHODS),
        Route("/{table}", _endpoint(_table), methods=_METHODS),
    ]


async def startup(ctx: GatewayContext) -> None:
    catalog = Catalog(ctx.admin_pool)
    await catalog.refresh(since=time.monotonic())
    _catalogs[id(ctx)] = catalog


async def shutdown(ctx: GatewayContext) -> None:
    await drain()
    _catalogs.pop(id(ctx), None)


Handler = Callable[[Request, GatewayContext], Awaitable[Response]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            response = await handler(request, context_of(request))
        except RestError as error:
            response = _error_response(error)
        except Exception:
            # A bug here must still reach the client as JSON, and not as a 503/520 it would retry.
            log.exception("unexpected error serving %s %s", request.method, request.url.path)
            response = _error_response(RestError(500, "PGRSTX00", "Internal error in the devstack gateway"))
        if request.method == "HEAD":
            response.body = b""
        return response

    return endpoint


def _error_response(error: RestError) -> Response:
    body = json.dumps(error.body()).encode()
    headers = {"Proxy-Status": f"PostgREST; error={error.code}", **error.headers}
    return Response(body, error.status, headers=headers, media_type="application/json; charset=utf-8")


async def _table(request: Request, ctx: GatewayContext) -> Response:
    started = time.monotonic()
    method = request.method
    if method not in ("GET", "HEAD", "POST", "PATCH", "DELETE"):
        raise RestError(405, "PGRST117", f"Unsupported HTTP method: {method}")
    check_profile(request, SCHEMA)
    caller = caller_of(request, ctx.settings.jwt_secret)
    single = wants_object(request)
    prefs = parse_prefer(request.headers.getlist("prefer"))
    query = parse_query(request.query_params.multi_items())
    catalog = _catalogs[id(ctx)]
    name = request.path_params["table"]
    table = await catalog.table(name, since=started)
    if table is None:
        raise unknown_table(SCHEMA, name)
    count = prefs.count is not None
    if method == "GET" or method == "HEAD":

        def read(t: Table) -> list[sql.Statement]:
            return [sql.build_read(t, query, count=count, head=method == "HEAD", max_rows=ctx.settings.max_rows)]

        result = await _run(ctx, catalog, caller, table, read, started, readonly=True, single=single)
        return _read_response(result, query, prefs, single=single, head=method == "HEAD")
    representation = prefs.return_ == "representation"
    build: Callable[[Table], list[sql.Statement]]
    if method == "POST":
        payload = await json_body(request, ctx.settings.max_body_bytes)
        rows = _rows_of(payload)

        def build_insert(t: Table) -> list[sql.Statement]:
            return sql.build_insert(
                t,
                query,
                rows,
                representation=representation,
                count=count,
                resolution=prefs.resolution,
                missing_default=prefs.missing_default,
            )

        build, status = build_insert, 201
    elif method == "PATCH":
        payload = await json_body(request, ctx.settings.max_body_bytes)
        if not isinstance(payload, dict):
            raise bad_body("The body of an update must be a JSON object")

        def build_update(t: Table) -> list[sql.Statement]:
            statement = sql.build_update(t, query, payload, representation=representation, count=count)
            return [statement] if statement else []

        build, status = build_update, 200 if representation else 204
    else:
        # The client sends `{}` with DELETE; it carries nothing, but still counts against the limit.
        await json_body(request, ctx.settings.max_body_bytes, empty={})

        def build_delete(t: Table) -> list[sql.Statement]:
            return [sql.build_delete(t, query, representation=representation, count=count)]

        build, status = build_delete, 200 if representation else 204
    result = await _run(ctx, catalog, caller, table, build, started, readonly=False, single=single)
    return _write_response(result, prefs, status, single=single, representation=representation)


def _rows_of(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list) and payload and all(isinstance(row, dict) for row in payload):
        return payload
    raise bad_body("The body of an insert must be a JSON object or a non-empty array of objects")


async def _run(
    ctx: GatewayContext,
    catalog: Catalog,
    caller: Caller,
    table: Table,
    build: Callable[[Table], list[sql.Statement]],
    started: float,
    *,
    readonly: bool,
    single: bool,
) -> Result:
    """Build the statements (once more after a catalog reload if a column is unknown) and run them."""
    try:
        statements = build(table)
    except RestError as error:
        if error.code not in ("42703", "PGRST204") or not await catalog.refresh(since=started):
            raise
        fresh = await catalog.table(table.name, since=started)
        if fresh is None:
            raise
        statements = build(fresh)
    return await execute(ctx.api_pool, catalog, caller, statements, readonly=readonly, single=single)


def _json_response(body: str | None, status: int, headers: dict[str, str], *, single: bool) -> Response:
    media = OBJECT_MEDIA_TYPE if single else "application/json"
    content = b"" if body is None else body.encode()
    return Response(content, status, headers=headers, media_type=f"{media}; charset=utf-8")


def _as_object(body: str | None) -> str | None:
    """The one element of a one-element ``json_agg`` array (PostgreSQL writes it as ``[elem]``)."""
    return None if body is None else body[1:-1]


def _range(lower: int, rows: int, total: int | None) -> str:
    shown = "*" if total is None else str(total)
    return f"*/{shown}" if rows == 0 else f"{lower}-{lower + rows - 1}/{shown}"


def _read_response(result: Result, query: Query, prefs: Preferences, *, single: bool, head: bool) -> Response:
    lower = query.offset or 0
    total = result.total
    status = 200
    if total is not None:
        # PostgREST's range status: past the end is 416, a partial page 206.
        if lower > total:
            raise RestError(
                416,
                "PGRST103",
                "Requested range not satisfiable",
                details=f"An offset of {lower} was requested, but there are only {total} rows.",
            )
        if result.rows < total:
            status = 206
    headers = {"Content-Range": _range(lower, result.rows, total)}
    if prefs.count:
        headers["Preference-Applied"] = prefs.applied()
    body = None if head else (_as_object(result.body) if single else result.body)
    return _json_response(body, status, headers, single=single)


def _write_response(result: Result, prefs: Preferences, status: int, *, single: bool, representation: bool) -> Response:
    headers = {"Content-Range": _range(0, result.rows, result.total)}
    if prefs.applied():
        headers["Preference-Applied"] = prefs.applied()
    if not representation:
        return Response(b"", status, headers=headers)
    body = result.body if result.body is not None else "[]"
    return _json_response(_as_object(body) if single else body, status, headers, single=single)


async def _rpc(request: Request, ctx: GatewayContext) -> Response:
    started = time.monotonic()
    method = request.method
    if method not in ("GET", "HEAD", "POST"):
        raise RestError(405, "PGRST101", f"Cannot use the {method} method on RPC")
    check_profile(request, SCHEMA)
    caller = caller_of(request, ctx.settings.jwt_secret)
    single = wants_object(request)
    prefs = parse_prefer(request.headers.getlist("prefer"))
    catalog = _catalogs[id(ctx)]
    name = request.path_params["name"]
    body = await json_body(request, ctx.settings.max_body_bytes, empty={}) if method == "POST" else None
    if method == "POST" and not isinstance(body, dict):
        raise bad_body("The body of a function call must be a JSON object of named arguments")
    try:
        function, arguments, query = await _resolve(request, catalog, name, body, started)
    except RestError:
        # A migration may have replaced the function (other parameters) since the cache was loaded.
        if not await catalog.refresh(since=started):
            raise
        function, arguments, query = await _resolve(request, catalog, name, body, started)
    statement = sql.build_rpc(
        function,
        arguments,
        query,
        count=prefs.count is not None,
        head=method == "HEAD",
        max_rows=ctx.settings.max_rows,
    )
    readonly = method != "POST" or function.volatility != "volatile"
    result = await execute(
        ctx.api_pool, catalog, caller, [statement], readonly=readonly, single=single and function.returns_set
    )
    if function.result == "void":
        return Response(b"", 204)
    if not function.returns_set:
        body = result.body
        if function.result == "composite":
            body = _as_object(body) if body != "[]" else "null"
        return _json_response(body or "null", 200, {}, single=single)
    return _read_response(result, query, prefs, single=single, head=method == "HEAD")


async def _resolve(
    request: Request, catalog: Catalog, name: str, body: dict[str, Any] | None, started: float
) -> tuple[Function, dict[str, Any], Query]:
    """The function a call means, its arguments and the query on its result.

    POST takes the arguments from the JSON body; GET from the query string, where a parameter named
    like an argument of the function is that argument and any other is a filter on the result.
    """
    candidates = await catalog.functions(name, since=started)
    if body is not None:
        arguments, query = body, parse_query(request.query_params.multi_items())
    else:
        names = frozenset(a.name for f in candidates for a in f.arguments)
        query = parse_query(request.query_params.multi_items(), arguments=names)
        arguments = dict(query.arguments)
    return _choose(name, candidates, frozenset(arguments)), arguments, query


def _choose(name: str, candidates: list[Function], given: frozenset[str]) -> Function:
    fitting = [f for f in candidates if f.accepts(given)]
    if not fitting:
        raise unknown_function(SCHEMA, name, sorted(given))
    if len(fitting) > 1:
        raise RestError(
            300,
            "PGRST203",
            f"Could not choose the best candidate function between several overloads of {SCHEMA}.{name}",
            hint="Try renaming the parameters or the function itself so that overloading can be resolved",
        )
    return fitting[0]
