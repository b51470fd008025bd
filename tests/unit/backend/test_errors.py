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
