"""``desktop-chat doctor [--json]``: check the server, the cache and the outbox, print the metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from desktop_chat import __version__
from desktop_chat.config import Settings
from desktop_chat.dal.factory import open_data_layer
from desktop_chat.errors import DesktopChatError


async def diagnose(settings: Settings) -> dict[str, Any]:
    """Open the data layer without a UI and report on each part (never raises for an unhealthy part)."""
    report: dict[str, Any] = {"version": __version__, "supabase_url": settings.supabase_url}
    layer = await open_data_layer(settings, realtime=False)
    try:
        report["secrets"] = layer.secrets.location
        try:
            report["server"] = {"reachable": True, "health_ms": round(await layer.backend.health() * 1000, 1)}
        except DesktopChatError as error:
            report["server"] = {"reachable": False, "error": error.message}
        store = layer.store
        try:
            profile = await store.restore_session()
        except DesktopChatError as error:
            profile = None
            report["session"] = {"restored": False, "error": error.message}
        if profile is not None:
            report["session"] = {"restored": True, "user_id": str(profile.id)}
            started = time.perf_counter()
            try:
                chats = await store.recent_chats()
                report["recent_chats"] = {"count": len(chats), "ms": round((time.perf_counter() - started) * 1000, 2)}
            except DesktopChatError as error:
                report["recent_chats"] = {"error": error.message}
            report["outbox_depth"] = await layer.outbox.depth(settings.supabase_url, profile.id)
        elif "session" not in report:
            report["session"] = {"restored": False, "error": "no saved session (sign in with the app first)"}
        report["cache"] = {"status": layer.cache.status.value, "detail": layer.cache.detail}
        report["memory"] = await layer.cache.poll_memory()
        report["snapshot"] = store.metrics_snapshot()
    finally:
        await layer.close()
    return report


def render(report: dict[str, Any], *, as_json: bool) -> str:
    if as_json:
        return json.dumps(report, indent=2, default=str)
    server = report.get("server", {})
    if server.get("reachable"):
        server_line = f"reachable in {server.get('health_ms')} ms"
    else:
        server_line = f"UNREACHABLE: {server.get('error')}"
    session = report.get("session", {})
    session_line = f"signed in as {session.get('user_id')}" if session.get("restored") else str(session.get("error"))
    lines = [
        f"desktop-chat {report['version']} → {report['supabase_url']}",
        f"  server   {server_line}",
        f"  cache    {report['cache']['status']} {report['cache']['detail']}".rstrip(),
        f"  secrets  {report['secrets']}",
        f"  session  {session_line}",
    ]
    if "recent_chats" in report:
        lines.append(f"  chats    {report['recent_chats']}")
    if "outbox_depth" in report:
        lines.append(f"  outbox   {report['outbox_depth']} unsent")
    memory = report.get("memory", {})
    lines.append(
        f"  memory   redis {memory.get('redis_used_memory')} B, memory tier {memory.get('memory_tier_bytes')} B"
    )
    return "\n".join(lines)
