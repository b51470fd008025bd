"""What the supabase client raises becomes one of our errors, with words a person understands."""

from __future__ import annotations

import httpx
import pytest
from postgrest import APIError
from supabase_auth.errors import AuthApiError, AuthRetryableError, AuthWeakPasswordError

from desktop_chat.backend.errors import map_error
from desktop_chat.errors import BackendUnavailable, Bug, InvalidInput, Rejected, Unauthorized

SERVER = "http://127.0.0.1:54321"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("PGRST303", Unauthorized),
        ("PGRST301", Unauthorized),
        ("42501", Rejected),
        ("23505", Rejected),
        ("23514", Rejected),
        ("22P02", Rejected),
        ("502", BackendUnavailable),
        ("PGRST001", BackendUnavailable),
        ("PGRST205", Bug),
        ("PGRST100", Bug),
    ],
)
def test_postgrest_errors(code: str, kind: type[Exception]) -> None:
    error = map_error(APIError({"code": code, "message": "m", "details": None, "hint": None}), SERVER)
    assert isinstance(error, kind)
    assert error.code == code


def test_auth_errors() -> None:
    wrong = map_error(AuthApiError("Invalid login credentials", 400, "invalid_credentials"), SERVER)
    assert isinstance(wrong, Unauthorized)
    assert wrong.message == "Wrong email or password."
    exists = map_error(AuthApiError("User already registered", 422, "user_already_exists"), SERVER)
    assert isinstance(exists, Rejected)
    weak = map_error(AuthWeakPasswordError("weak", 422, ["length"]), SERVER)
    assert isinstance(weak, InvalidInput)
    assert "length" in weak.message
    down = map_error(AuthRetryableError("down", 503), SERVER)
    assert isinstance(down, BackendUnavailable)


def test_network_errors_are_environment_failures() -> None:
    request = httpx.Request("GET", SERVER)
    for raw in (httpx.ConnectError("refused", request=request), httpx.ReadTimeout("slow"), TimeoutError()):
        error = map_error(raw, SERVER)
        assert isinstance(error, BackendUnavailable)
        assert SERVER in error.message


def test_anything_else_is_a_bug() -> None:
    assert isinstance(map_error(KeyError("x"), SERVER), Bug)


@pytest.mark.parametrize("code", ["PGRSTX00", "XX000", "42P17", "P0002", "53400", "PGRST999"])
def test_any_code_answered_with_a_5xx_is_the_server_s_trouble_not_a_bug(code: str) -> None:
    """A 500 with a code the app does not know (devstack's own ``PGRSTX00``, an internal error, a policy
    that recurses) may pass: the request is retried, so a message stays pending instead of failing."""
    raw = APIError({"code": code, "message": "m", "details": None, "hint": None})
    assert isinstance(map_error(raw, SERVER), Bug)  # without the status it is what it always was
    error = map_error(raw, SERVER, status=500)
    assert isinstance(error, BackendUnavailable)
    assert error.code == code
    assert "HTTP 500" in error.message


@pytest.mark.parametrize("code", ["57P03", "57P01", "08006", "08003", "53300", "40001", "40P01", "55P03"])
def test_a_database_away_or_busy_is_transient_whatever_the_status(code: str) -> None:
    raw = APIError({"code": code, "message": "the database system is starting up", "details": None, "hint": None})
    for status in (None, 500, 503):
        assert isinstance(map_error(raw, SERVER, status=status), BackendUnavailable), (code, status)


def test_a_4xx_keeps_its_meaning_with_the_status() -> None:
    refused = APIError({"code": "23514", "message": "check", "details": None, "hint": None})
    assert isinstance(map_error(refused, SERVER, status=400), Rejected)
    unknown = APIError({"code": "PGRST205", "message": "no table", "details": None, "hint": None})
    assert isinstance(map_error(unknown, SERVER, status=404), Bug)


def test_the_api_gateways_key_refusal_says_the_project_key_is_wrong() -> None:
    # Supabase's gateway answers before PostgREST, with no code: a wrong key is not the app's bug.
    body = {"message": "Invalid API key", "hint": "Double check your Supabase `anon` or `service_role` API key."}
    rest = map_error(APIError(body), SERVER, status=401)
    request = httpx.Request("GET", f"{SERVER}/auth/v1/health")
    health = httpx.HTTPStatusError("401", request=request, response=httpx.Response(401, json=body, request=request))
    for error in (rest, map_error(health, SERVER)):
        assert isinstance(error, Unauthorized)
        assert (error.code, error.message) == ("invalid_api_key", "The server does not accept the app's project key.")
