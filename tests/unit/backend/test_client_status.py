"""The backend hands the HTTP status of a failed REST call to the error mapping (the PostgREST client keeps
only the body's code): a 5xx with a code the app does not know is retried, not reported as a bug."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.config import Settings
from desktop_chat.errors import BackendUnavailable, Bug, Rejected
from desktop_chat.models import ChatId, new_chat_id, new_message_id
from desktop_chat.secrets import SecretStore
from tests.keyrings import MemoryKeyring

SERVER = "http://127.0.0.1:9"  # never reached: the transport answers


def _answer(request: httpx.Request) -> httpx.Response:
    """A PostgREST-shaped error whose status the path chooses (``/rest/v1/<status>_...``)."""
    table = request.url.path.rsplit("/", 1)[-1]
    status = int(table.split("_", 1)[0]) if table[0].isdigit() else 500
    code = {500: "PGRSTX00", 409: "23505", 404: "PGRST205"}.get(status, "XX000")
    body = {"code": code, "details": None, "hint": None, "message": "from the test transport"}
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


async def _backend(tmp_path: Path) -> SupabaseBackend:
    settings = Settings(
        supabase_url=SERVER,
        supabase_anon_key=SecretStr("anon"),
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
        runtime_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
        log_dir=tmp_path / "log",
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(_answer))
    backend = SupabaseBackend(settings, SecretStore(tmp_path, backend=MemoryKeyring()), http=http)
    await backend.start()
    return backend


async def test_a_500_on_insert_is_backend_unavailable(tmp_path: Path) -> None:
    backend = await _backend(tmp_path)
    try:
        with pytest.raises(BackendUnavailable, match="HTTP 500"):
            await backend.insert_message(new_message_id(), ChatId(new_chat_id()), "hello")
    finally:
        await backend.close()


async def test_concurrent_calls_each_get_their_own_status(tmp_path: Path) -> None:
    backend = await _backend(tmp_path)

    async def call(table: str) -> BaseException:
        try:
            await backend._rows("test", lambda: backend.client.table(table).select("*").execute())
        except Exception as error:
            return error
        raise AssertionError("the transport only answers errors")

    try:
        errors = await asyncio.gather(*(call(t) for t in ["500_a", "409_b", "404_c", "500_d", "409_e"] * 4))
    finally:
        await backend.close()
    kinds = [type(error) for error in errors]
    assert kinds == [BackendUnavailable, Rejected, Bug, BackendUnavailable, Rejected] * 4
