"""Summaries for people: the same dictionaries ``--json`` prints, as indented text with a headline."""

from __future__ import annotations

from typing import Any

_HEADLINES = {
    ("plan", True): "plan: ready to run",
    ("plan", False): "plan: NOT ready; fix the blockers below first",
    ("run", True): "run: done",
    ("verify", True): "verify: everything matches",
    ("verify", False): "verify: DIFFERENCES FOUND",
    ("rollback", True): "rollback: done",
    ("backup", True): "backup: written",
    ("cleanup", True): "cleanup: legacy keys deleted",
    ("restore", True): "restore: keys written back",
}


def _label(key: str) -> str:
    return key.replace("_", " ")


def _lines(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{_label(str(key))}:")
                out.extend(_lines(item, indent + 1))
            elif isinstance(item, dict | list):
                out.append(f"{pad}{_label(str(key))}: none")
            else:
                out.append(f"{pad}{_label(str(key))}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                out.append(f"{pad}- " + ", ".join(f"{_label(str(k))} {_scalar(v)}" for k, v in item.items()))
            else:
                out.append(f"{pad}- {_scalar(item)}")
    else:
        out.append(f"{pad}{_scalar(value)}")
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(summary: dict[str, Any]) -> str:
    command = str(summary.get("command", ""))
    ok = bool(summary.get("ok", summary.get("ready", True)))
    headline = _HEADLINES.get((command, ok), f"{command}: {'ok' if ok else 'failed'}")
    body = {key: value for key, value in summary.items() if key not in ("command", "ok", "ready")}
    return "\n".join([headline, *_lines(body, 1)])
