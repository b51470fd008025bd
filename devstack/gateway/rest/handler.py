"""The ``/rest/v1`` endpoints: PostgREST-compatible reads, writes and RPC over the ``api_pool``.

Each request is planned against the schema cache (``plan``, ``sql``) and run as one statement as the
caller (``runner``), so row level security and privileges are PostgreSQL's to enforce. Status codes,
``Content-Range``, ``Preference-Applied`` and error bodies follow PostgREST 12 (``PostgREST.Response``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from devstack.gateway.context import GatewayContext, context_of
from devstack.gateway.rest import sql
from devstack.gateway.rest.catalog import SCHEMA, Catalog, Function, Snapshot, Table
from devstack.gateway.rest.context import (
    CONTENT_TYPES,
    Caller,
    caller_of,
    check_profile,
    negotiate,
    read_payload,
    read_raw_body,
)
from devstack.gateway.rest.errors import RestError, unknown_function, unknown_table
from devstack.gateway.rest.parser import Preferences, parse_prefer, parse_query
from devstack.gateway.rest.runner import RequestInfo, Result, drain, execute, singular

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
    if error.status == 503:
        # PostgREST adds a retry hint to every 503 (the seconds until its connection worker tries the
        # database again); this gateway tries again on the next request, so: at once.
        headers.setdefault("Retry-After", "0")
    return Response(body, error.status, headers=headers, media_type="application/json; charset=utf-8")


def _request_info(request: Request, path: str) -> RequestInfo:
    headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in request.scope["headers"]}
    # As PostgREST: every header but the cookies, which go to request.cookies.
    headers.pop("cookie", None)
    return RequestInfo(request.method, path, headers, dict(request.cookies))


def _content_range(lower: int, upper: int, total: int | None) -> str:
    """PostgREST's ``Content-Range`` (``contentRangeH``): ``lower-upper/total``, ``*`` where unknown or empty."""
    shown = "*" if total is None else str(total)
    if total != 0 and lower <= upper:
        return f"{lower}-{upper}/{shown}"
    return f"*/{shown}"


def _respond(
    body: str | None,
    status: int,
    headers: dict[str, str],
    media: sql.Media | None,
) -> Response:
    if media is None:
        return Response(b"", status, headers=headers)
    content = b"" if body is None else body.encode()
    return Response(content, status, headers=headers, media_type=f"{CONTENT_TYPES[media]}; charset=utf-8")


def _applied(prefs: Preferences, kinds: tuple[str, ...], headers: dict[str, str]) -> None:
    value = prefs.applied(kinds)
    if value:
        headers["Preference-Applied"] = value


async def _table(request: Request, ctx: GatewayContext) -> Response:
    started = time.monotonic()
    method = request.method
    if method not in ("GET", "HEAD", "POST", "PATCH", "DELETE"):
        raise RestError(405, "PGRST117", f"Unsupported HTTP method: {method}")
    check_profile(request, SCHEMA)
    caller = caller_of(request, ctx.settings.jwt_secret)
    prefs = parse_prefer(request.headers.getlist("prefer"))
    prefs.check()
    media = negotiate(request)
    query = parse_query(request.query_params.multi_items())
    catalog = _catalogs[id(ctx)]
    name = request.path_params["table"]
    table = await catalog.table(name, since=started)
    if table is None:
        raise unknown_table(SCHEMA, name)
    info = _request_info(request, f"/{name}")
    count = prefs.count is not None
    if method in ("GET", "HEAD"):
        head = method == "HEAD"

        def read(snapshot: Snapshot, t: Table) -> sql.Statement:
            return sql.build_read(
                snapshot, t, query, count=count, media="none" if head else media, max_rows=ctx.settings.max_rows
            )

        result = await _run(ctx, catalog, caller, table, read, started, info, readonly=True, check=_single(media))
        headers: dict[str, str] = {}
        _applied(prefs, ("count", "tx", "handling"), headers)
        status = _range(result, query.offset or 0, headers)
        return _respond(result.body, status, headers, media)

    representation = prefs.return_ == "representation"
    shown: sql.Media = media if representation else "none"
    rollback = prefs.tx == "rollback"
    if method == "DELETE":
        # The client sends `{}` with DELETE; PostgREST ignores it, but it still counts against the limit.
        await read_raw_body(request, ctx.settings.max_body_bytes)

        def delete(snapshot: Snapshot, t: Table) -> sql.Statement:
            return sql.build_delete(snapshot, t, query, representation=representation, media=shown)

        result = await _run(
            ctx, catalog, caller, table, delete, started, info, check=_write_check(media, prefs), rollback=rollback
        )
        headers = {"Content-Range": _content_range(1, 0, result.rows if count else None)}
        _applied(prefs, ("return_", "count", "tx", "handling", "max_affected"), headers)
        return _respond(result.body, 200 if representation else 204, headers, media if representation else None)

    payload = await read_payload(request, ctx.settings.max_body_bytes, columns=query.columns)
    if method == "PATCH":

        def update(snapshot: Snapshot, t: Table) -> sql.Statement:
            return sql.build_update(
                snapshot,
                t,
                query,
                payload,
                representation=representation,
                media=shown,
                missing_default=prefs.missing_default,
            )

        result = await _run(
            ctx, catalog, caller, table, update, started, info, check=_write_check(media, prefs), rollback=rollback
        )
        headers = {"Content-Range": _content_range(0, result.rows - 1, result.rows if count else None)}
        _applied(prefs, ("return_", "count", "tx", "missing", "handling", "max_affected"), headers)
        return _respond(result.body, 200 if representation else 204, headers, media if representation else None)

    def insert(snapshot: Snapshot, t: Table) -> sql.Statement:
        return sql.build_insert(
            snapshot,
            t,
            query,
            payload,
            representation=representation,
            media=shown,
            resolution=prefs.resolution,
            missing_default=prefs.missing_default,
        )

    result = await _run(
        ctx, catalog, caller, table, insert, started, info, check=_single(media, write=True), rollback=rollback
    )
    headers = {"Content-Range": _content_range(1, 0, result.rows if count else None)}
    kinds: tuple[str, ...] = ("missing", "return_", "count", "tx", "handling")
    if table.primary_key or query.on_conflict is not None:
        kinds = ("resolution", *kinds)
    _applied(prefs, kinds, headers)
    merged_only = prefs.resolution == "merge-duplicates" and result.inserted is not None and result.inserted <= 0
    return _respond(result.body, 200 if merged_only else 201, headers, media if representation else None)


def _single(media: sql.Media, *, write: bool = False) -> Callable[[Result], None] | None:
    """``single()``: anything but one row is PGRST116 (and a write is rolled back)."""
    if media not in ("single", "single-stripped"):
        return None

    def check(result: Result) -> None:
        if result.rows != 1:
            raise singular(result.rows)

    return check


def _write_check(media: sql.Media, prefs: Preferences) -> Callable[[Result], None] | None:
    """``single()`` and ``Prefer: max-affected`` (honoured with ``handling=strict``, as PostgREST does)."""
    single = _single(media, write=True)
    limit = prefs.max_affected if prefs.strict else None
    if single is None and limit is None:
        return None

    def check(result: Result) -> None:
        if single is not None:
            single(result)
        if limit is not None and result.rows > limit:
            raise RestError(
                400,
                "PGRST124",
                "Query result exceeds max-affected preference constraint",
                details=f"The query affects {result.rows} rows",
            )

    return check


def _range(result: Result, lower: int, headers: dict[str, str]) -> int:
    """A read's status (200, 206 for part of the total, 416 past it) and its ``Content-Range``."""
    total = result.total
    upper = lower + result.rows - 1
    headers["Content-Range"] = _content_range(lower, upper, total)
    if total is None:
        return 200
    if lower > total:
        raise RestError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            details=f"An offset of {lower} was requested, but there are only {total} rows.",
            headers={"Content-Range": f"*/{total}"},
        )
    return 206 if result.rows < total else 200


async def _run(
    ctx: GatewayContext,
    catalog: Catalog,
    caller: Caller,
    table: Table,
    build: Callable[[Snapshot, Table], sql.Statement],
    started: float,
    info: RequestInfo,
    *,
    readonly: bool = False,
    check: Callable[[Result], None] | None = None,
    rollback: bool = False,
) -> Result:
    """Build the statement (once more after a catalog reload if a name is unknown) and run it."""
    try:
        statement = build(catalog.snapshot, table)
    except RestError as error:
        if error.code not in ("42703", "PGRST204", "PGRST200", "42704") or not await catalog.refresh(since=started):
            raise
        fresh = await catalog.table(table.name, since=started)
        if fresh is None:
            raise
        statement = build(catalog.snapshot, fresh)
    return await execute(
        ctx.api_pool, catalog, caller, statement, info, readonly=readonly, check=check, rollback=rollback
    )


async def _rpc(request: Request, ctx: GatewayContext) -> Response:
    started = time.monotonic()
    method = request.method
    if method not in ("GET", "HEAD", "POST"):
        raise RestError(405, "PGRST101", f"Cannot use the {method} method on RPC")
    check_profile(request, SCHEMA)
    caller = caller_of(request, ctx.settings.jwt_secret)
    prefs = parse_prefer(request.headers.getlist("prefer"))
    prefs.check()
    media = negotiate(request)
    catalog = _catalogs[id(ctx)]
    name = request.path_params["name"]
    items = request.query_params.multi_items()
    if method == "POST":
        query = parse_query(items)
        payload = await read_payload(request, ctx.settings.max_body_bytes, columns=query.columns, rpc=True)
        if not payload.is_object:
            raise RestError(400, "PGRST102", "The body of a function call must be a JSON object of named arguments")
        arguments, given = payload.raw, payload.keys
    else:
        query = parse_query(items, rpc_read=True)
        arguments, given = json.dumps(dict(query.arguments)), tuple(dict(query.arguments))
    post = method == "POST"
    try:
        function = _choose(name, await catalog.functions(name, since=started), frozenset(given), post=post)
    except RestError:
        # A migration may have replaced the function (other parameters) since the cache was loaded.
        if not await catalog.refresh(since=started):
            raise
        function = _choose(name, await catalog.functions(name, since=started), frozenset(given), post=post)
    head = method == "HEAD"

    def call(snapshot: Snapshot) -> sql.Statement:
        return sql.build_rpc(
            snapshot,
            function,
            arguments if given else None,
            given,
            query,
            count=prefs.count is not None,
            media="none" if head else media,
            max_rows=ctx.settings.max_rows,
        )

    try:
        statement = call(catalog.snapshot)
    except RestError as error:
        if error.code not in ("42703", "PGRST200", "42704") or not await catalog.refresh(since=started):
            raise
        statement = call(catalog.snapshot)
    readonly = not post or function.volatility != "volatile"
    checks = [c for c in (_single(media), _write_check("json", prefs)) if c is not None]

    def check(result: Result) -> None:
        for each in checks:
            each(result)

    result = await execute(
        ctx.api_pool,
        catalog,
        caller,
        statement,
        _request_info(request, f"/rpc/{name}"),
        readonly=readonly,
        check=check if checks else None,
        rollback=prefs.tx == "rollback",
    )
    headers: dict[str, str] = {}
    _applied(prefs, ("count", "tx", "handling", "max_affected"), headers)
    if function.result == "void":
        headers["Content-Range"] = _content_range(
            query.offset or 0, (query.offset or 0) + result.rows - 1, result.total
        )
        return _respond(None, 204, headers, None)
    status = _range(result, query.offset or 0, headers)
    return _respond(result.body, status, headers, media)


def _choose(name: str, candidates: list[Function], given: frozenset[str], *, post: bool) -> Function:
    fitting = [f for f in candidates if f.accepts(given)]
    if not fitting:
        raise unknown_function(SCHEMA, name, sorted(given), post=post)
    if len(fitting) > 1:
        described = ", ".join(
            f"{SCHEMA}.{f.name}({', '.join(f'{a.name} => {a.display}' for a in f.arguments)})" for f in fitting
        )
        raise RestError(
            300,
            "PGRST203",
            f"Could not choose the best candidate function between: {described}",
            hint=(
                "Try renaming the parameters or the function itself in the database so function overloading"
                " can be resolved"
            ),
        )
    return fitting[0]
