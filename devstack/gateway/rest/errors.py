"""REST errors in PostgREST's shape (``{code, details, hint, message}``) and its HTTP status codes.

``RestError`` is raised by the pure parser and SQL builder and by the handler; ``from_postgres`` turns a
PostgreSQL error into one with the status PostgREST would answer (its docs, "Errors").
"""

from __future__ import annotations

import asyncpg


class RestError(Exception):
    """An error answered to the client as a PostgREST error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: object = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}


def parse_error(message: str, details: str | None = None) -> RestError:
    """PGRST100: a query string parameter PostgREST cannot parse."""
    return RestError(400, "PGRST100", message, details=details)


def bad_body(message: str) -> RestError:
    """PGRST102: a body that is not the JSON the operation needs."""
    return RestError(400, "PGRST102", message)


def unknown_column(table: str, column: str) -> RestError:
    """42703, as PostgreSQL reports a column that does not exist (PostgREST forwards it with 400)."""
    return RestError(400, "42703", f"column {table}.{column} does not exist")


def unknown_payload_column(table: str, column: str) -> RestError:
    """PGRST204: a column named in a write's payload or ``columns`` that the table does not have."""
    return RestError(400, "PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache")


def unknown_table(schema: str, table: str) -> RestError:
    return RestError(404, "PGRST205", f"Could not find the table '{schema}.{table}' in the schema cache")


def unknown_function(schema: str, name: str, arguments: list[str], *, post: bool = False) -> RestError:
    """PGRST202, worded as PostgREST 12 words it (a POST could also have meant one JSON parameter)."""
    listed = ", ".join(sorted(arguments))
    shown = f"({listed})" if arguments else " without parameters"
    searched = (f" with parameter{'s' if len(arguments) > 1 else ''} {listed}") if arguments else " without parameters"
    if post:
        searched += " or with a single unnamed json/jsonb parameter"
    return RestError(
        404,
        "PGRST202",
        f"Could not find the function {schema}.{name}{shown} in the schema cache",
        details=f"Searched for the function {schema}.{name}{searched}, but no matches were found in the schema cache.",
    )


def _status_for(sqlstate: str, message: str, *, authenticated: bool) -> int:
    """PostgREST's mapping of SQLSTATE to HTTP status (PostgREST.Error.mapSQLtoHTTP)."""
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "42883": 404,
        "42P01": 404,
        "42P17": 500,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
    }
    if sqlstate in exact:
        return exact[sqlstate]
    if sqlstate == "42501":
        return 403 if authenticated else 401
    if sqlstate == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate == "22023":
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    by_class = {
        "08": 503,
        "09": 500,
        "0L": 403,
        "0P": 403,
        "25": 500,
        "28": 403,
        "2D": 500,
        "38": 500,
        "39": 500,
        "3B": 500,
        "40": 500,
        "53": 503,
        "54": 500,
        "55": 500,
        "57": 500,
        "58": 500,
        "F0": 500,
        "HV": 500,
        "P0": 500,
        "XX": 500,
    }
    return by_class.get(sqlstate[:2], 400)


def from_postgres(error: asyncpg.PostgresError, *, authenticated: bool) -> RestError:
    """The PostgREST answer to a PostgreSQL error raised while serving a request.

    ``authenticated`` is whether the request ran as a role other than ``anon``: PostgREST answers a
    privilege error with 401 to anonymous requests (log in first) and 403 to signed-in ones.
    """
    sqlstate = error.sqlstate or "XX000"
    message = str(getattr(error, "message", None) or error)
    status = _status_for(sqlstate, message, authenticated=authenticated)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return RestError(
        status,
        sqlstate,
        message,
        details=getattr(error, "detail", None),
        hint=getattr(error, "hint", None),
        headers=headers,
    )
