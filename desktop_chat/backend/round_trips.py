"""``RoundTrips``: how many requests the app has sent to Supabase, by service and by operation.

Every REST, RPC and auth call of the official client goes through the one ``httpx.AsyncClient`` that
``SupabaseBackend`` hands it, so a request hook on that client sees each round trip, including the ones
the library makes on its own (a token refresh, the user lookup of a sign-in). At a real network distance
the number of round trips an action waits on is what the user feels; the diagnostics and the benchmarks
read these counts (``snapshot``, or the difference of two: ``since``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: the first frame imports this module, httpx comes later
    import httpx


@dataclass(frozen=True, slots=True)
class RoundTripCounts:
    """A snapshot of the counters: ``total``, and per key (``"rest GET chat_messages"``, ``"rpc chat_list"``,
    ``"auth POST token"`` ...)."""

    total: int = 0
    by_call: Mapping[str, int] = field(default_factory=dict)
    answered: int = 0
    """Responses received (a request sent and not yet answered is in flight)."""

    def since(self, earlier: RoundTripCounts) -> RoundTripCounts:
        """What was counted after ``earlier`` was taken."""
        calls = {key: count - earlier.by_call.get(key, 0) for key, count in self.by_call.items()}
        return RoundTripCounts(
            self.total - earlier.total, {key: n for key, n in calls.items() if n}, self.answered - earlier.answered
        )


def call_key(method: str, path: str) -> str:
    """A request as a short, id-free key: its service, the method for tables and auth, and the resource.

    ``/rest/v1/rpc/chat_list`` → ``rpc chat_list``; ``/rest/v1/chat_messages`` (GET) → ``rest GET
    chat_messages``; ``/auth/v1/token`` (POST) → ``auth POST token``. Query strings (where ids are) are not
    part of ``path``.
    """
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 3 and parts[0] == "rest" and parts[2] == "rpc":
        return f"rpc {parts[3] if len(parts) > 3 else ''}".rstrip()
    if len(parts) >= 2 and parts[0] in {"rest", "auth", "realtime", "storage", "functions"}:
        resource = parts[2] if len(parts) > 2 else ""
        return f"{parts[0]} {method} {resource}".rstrip()
    return f"other {method}"


class RoundTrips:
    """Counts the requests an ``httpx.AsyncClient`` sends (see the module docstring)."""

    def __init__(self) -> None:
        self._by_call: Counter[str] = Counter()
        self._total = 0
        self._answered = 0

    def attach(self, client: httpx.AsyncClient) -> None:
        """Count every request ``client`` sends from now on."""
        hooks = client.event_hooks
        hooks.setdefault("request", []).append(self._on_request)
        hooks.setdefault("response", []).append(self._on_response)
        client.event_hooks = hooks

    async def _on_request(self, request: httpx.Request) -> None:
        self._total += 1
        self._by_call[call_key(request.method, request.url.path)] += 1

    async def _on_response(self, response: httpx.Response) -> None:
        self._answered += 1

    @property
    def total(self) -> int:
        return self._total

    def snapshot(self) -> RoundTripCounts:
        return RoundTripCounts(self._total, dict(self._by_call), self._answered)
