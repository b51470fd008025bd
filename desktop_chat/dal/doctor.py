"""``desktop-chat doctor [--json]``: check the server, the cache and the outbox, print the metrics."""

from __future__ import annotations

import time
from typing import Any

from desktop_chat import __version__
from desktop_chat.config import Settings
from desktop_chat.dal.factory import open_data_layer
from desktop_chat.errors import DesktopChatError


async def diagnose(settings: Settings) -> dict[str, Any]:
    """Open the data layer without a UI and check each part. Never raises for an unhealthy part.

    The report has ``ok`` (the app can work: the server answers and the outbox opens), ``checks`` (one
    line each: name, ok, detail) and the metrics ``snapshot`` the diagnostics window shows.
    """
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"name": name, "ok": ok, "detail": detail})

    report: dict[str, Any] = {"version": __version__, "supabase_url": settings.supabase_url, "checks": checks}
    try:
        layer = await open_data_layer(settings, realtime=False)
    except DesktopChatError as error:
        check("data layer", False, error.message)
        report["ok"] = False
        return report
    try:
        check("keyring", True, layer.secrets.location)
        check("outbox", True, str(layer.outbox.path))
        try:
            seconds = await layer.backend.health()
            check("server", True, f"{settings.supabase_url} answered in {seconds * 1000:.1f} ms")
        except DesktopChatError as error:
            check("server", False, error.message)
        cache = layer.cache
        check("cache", cache.status.value in {"online", "disabled"}, f"{cache.status.value} {cache.detail}".strip())
        store = layer.store
        try:
            profile = await store.restore_session()
        except DesktopChatError as error:
            profile = None
            check("session", False, error.message)
        if profile is not None:
            started = time.perf_counter()
            chats = await store.recent_chats()
            elapsed_ms = (time.perf_counter() - started) * 1000
            check("session", True, f"signed in as {profile.display_name}; {len(chats)} chats in {elapsed_ms:.1f} ms")
            report["outbox_depth"] = await layer.outbox.depth(settings.supabase_url, profile.id)
        elif not any(c["name"] == "session" for c in checks):
            check("session", True, "no saved session (sign in with the app)")
        report["memory"] = await cache.poll_memory()
        report["snapshot"] = store.metrics_snapshot()
    finally:
        await layer.close()
    by_name = {c["name"]: c["ok"] for c in checks}
    report["ok"] = bool(by_name.get("server") and by_name.get("outbox"))
    return report
