"""Presence: who is tracked on a topic, as Phoenix.Presence reports it. Pure.

Each channel tracks at most one presence, under its key (``config.presence.key``). The state of a
topic maps each key to ``{"metas": [...]}``, one meta per tracking channel, each carrying the tracked
fields plus a unique ``phx_ref`` (the client's receive loop dies on a meta without one). Changes go out
as diffs ``{"joins": ..., "leaves": ...}``; re-tracking with new fields is a leave of the old meta plus
a join of the new one, which carries the old ref as ``phx_ref_prev``.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

Diff = dict[str, dict[str, dict[str, list[dict[str, Any]]]]]


@dataclass
class _Entry:
    key: str
    meta: dict[str, Any]


@dataclass
class PresenceRegistry:
    """Presences by topic and owner (the tracking channel).

    A topic is any hashable (the hub uses ``(private, topic)``), an owner any hashable that tracks at
    most one presence per topic.
    """

    _topics: dict[Hashable, dict[Hashable, _Entry]] = field(default_factory=dict)
    _prefix: str = field(default_factory=lambda: "F" + base64.urlsafe_b64encode(os.urandom(6)).decode())
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def _new_ref(self) -> str:
        return f"{self._prefix}{next(self._counter)}"

    def track(self, topic: Hashable, owner: Hashable, key: str, fields: dict[str, Any]) -> Diff | None:
        """Track or update ``owner``'s presence; the diff to send, or None when nothing changed."""
        entries = self._topics.setdefault(topic, {})
        previous = entries.get(owner)
        if previous is not None and previous.key == key and _fields(previous.meta) == fields:
            return None
        meta: dict[str, Any] = {**fields, "phx_ref": self._new_ref()}
        leaves: dict[str, dict[str, list[dict[str, Any]]]] = {}
        if previous is not None:
            if previous.key == key:
                meta["phx_ref_prev"] = previous.meta["phx_ref"]
            leaves = {previous.key: {"metas": [previous.meta]}}
        entries[owner] = _Entry(key, meta)
        return {"joins": {key: {"metas": [meta]}}, "leaves": leaves}

    def untrack(self, topic: Hashable, owner: Hashable) -> Diff | None:
        """Forget ``owner``'s presence; the diff to send, or None when it had none."""
        entries = self._topics.get(topic)
        if not entries or owner not in entries:
            return None
        entry = entries.pop(owner)
        if not entries:
            del self._topics[topic]
        return {"joins": {}, "leaves": {entry.key: {"metas": [entry.meta]}}}

    def state(self, topic: Hashable) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """The full state of ``topic`` (what ``presence_state`` carries)."""
        state: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for entry in self._topics.get(topic, {}).values():
            state.setdefault(entry.key, {"metas": []})["metas"].append(entry.meta)
        return state


def _fields(meta: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in meta.items() if name not in ("phx_ref", "phx_ref_prev")}
