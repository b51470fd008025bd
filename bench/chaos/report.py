"""The matrix as a table, and a line of evidence per failed cell. Pure: formatting only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.chaos.accounting import HEAL_LIMIT

COLUMNS = ("cell", "sent", "stored", "shown once", "lost", "dup", "heal s", "")


def heal_text(heal: float | None) -> str:
    return "never" if heal is None else f"{heal:.2f}"


def verdict(cell: Mapping[str, Any], limit: float = HEAL_LIMIT) -> str:
    if cell.get("error"):
        return "ERROR"
    if cell["ok"]:
        return "ok"
    reasons = []
    if cell["lost"]:
        reasons.append("LOST")
    if cell["duplicated"]:
        reasons.append("DUP")
    if not reasons and (cell["heal_s"] is None or cell["heal_s"] > limit):
        reasons.append("SLOW")
    return " ".join(reasons) or "FAIL"


def table(cells: Sequence[Mapping[str, Any]]) -> str:
    """A fixed-width table, one row per cell (sent counts what ``send()`` accepted, plus any ``extra``)."""
    rows = [COLUMNS]
    for cell in cells:
        sent = str(cell["sent"]) + (f"+{cell['extra']}" if cell.get("extra") else "")
        rows.append(
            (
                str(cell["title"]),
                sent,
                str(cell["stored"]),
                str(cell["shown_once"]),
                str(cell["lost"]),
                str(cell["duplicated"]),
                heal_text(cell["heal_s"]),
                verdict(cell),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells_text = [row[0].ljust(widths[0])] + [value.rjust(widths[i]) for i, value in enumerate(row[1:-1], 1)]
        lines.append("  ".join([*cells_text, row[-1]]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths).rstrip())
    return "\n".join(lines)


def evidence(cell: Mapping[str, Any]) -> str:
    """What the numbers say about a failed cell: who missed what, and how the links behaved."""
    parts = []
    if cell.get("error"):
        parts.append(f"error: {cell['error']}")
    kinds = (("missing_by_view", "missing"), ("unconfirmed_by_view", "pending"), ("doubled_by_view", "doubled"))
    for key, label in kinds:
        for view, count in sorted(cell.get(key, {}).items()):
            parts.append(f"{view}: {count} {label}")
    if cell.get("not_stored"):
        parts.append(f"{cell['not_stored']} not stored")
    if cell.get("lost"):
        parts.append(f"{cell.get('lost_sent_after_fault_end', 0)} of the lost sent after the fault ended")
    for label, status in sorted(cell.get("clients", {}).items()):
        if "error" in status:
            parts.append(f"{label}: {status['error']}")
        else:
            parts.append(
                f"{label} at the end: {status['conn']}, {status['reconnects']} reconnects, outbox {status['outbox']}"
            )
    load = cell.get("load")
    if load and load["outbox_at_end_of_sending"] > load["offered_per_s"] * 10:
        parts.append(
            f"overloaded: {load['outbox_at_end_of_sending']} messages still in the outboxes when sending stopped "
            f"({load['stored_per_s']} of {load['offered_per_s']:g} msg/s stored)"
        )
    if cell.get("heal_s") is not None and cell.get("worst_message"):
        parts.append(f"slowest: {cell['worst_message']}")
    return "; ".join(parts)
