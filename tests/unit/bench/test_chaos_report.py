"""The chaos matrix's table and verdicts."""

from __future__ import annotations

from typing import Any

from bench.chaos.report import evidence, table, verdict


def cell(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "cell": "pg-restart",
        "title": "PostgreSQL restart",
        "ok": True,
        "error": None,
        "sent": 40,
        "extra": 0,
        "stored": 40,
        "shown_once": 40,
        "lost": 0,
        "duplicated": 0,
        "heal_s": 1.25,
        "clients": {},
    }
    values.update(overrides)
    return values


def test_verdicts_name_what_failed() -> None:
    assert verdict(cell()) == "ok"
    assert verdict(cell(ok=False, lost=3, shown_once=37, heal_s=None)) == "LOST"
    assert verdict(cell(ok=False, duplicated=1)) == "DUP"
    assert verdict(cell(ok=False, heal_s=14.0)) == "SLOW"
    assert verdict(cell(ok=False, error="RuntimeError: no gateway")) == "ERROR"


def test_the_table_has_one_aligned_row_per_cell() -> None:
    text = table([cell(), cell(title="gateway down 60 s", ok=False, lost=2, heal_s=None, extra=1)])
    lines = text.splitlines()
    assert lines[0].split() == ["cell", "sent", "stored", "shown", "once", "lost", "dup", "heal", "s"]
    assert lines[2].split()[-5:] == ["40", "0", "0", "1.25", "ok"]
    assert lines[3].split()[-7:] == ["40+1", "40", "40", "2", "0", "never", "LOST"]
    assert lines[2].index("1.25") + 4 == lines[3].index("never") + 5  # numbers are right-aligned


def test_evidence_says_who_missed_what() -> None:
    text = evidence(
        cell(
            ok=False,
            lost=12,
            missing_by_view={"bob": 12},
            lost_sent_after_fault_end=12,
            clients={"bob": {"conn": "live", "reconnects": 0, "outbox": 0}},
        )
    )
    assert "bob: 12 missing" in text
    assert "12 of the lost sent after the fault ended" in text
    assert "bob at the end: live, 0 reconnects, outbox 0" in text


def test_evidence_says_when_the_soak_was_more_than_the_machine_could_carry() -> None:
    load = {"offered_per_s": 50.0, "stored_per_s": 31.2, "outbox_max": 5500, "outbox_at_end_of_sending": 5300}
    text = evidence(cell(ok=False, load=load))
    assert "overloaded: 5300 messages still in the outboxes when sending stopped (31.2 of 50 msg/s stored)" in text
    assert "overloaded" not in evidence(cell(load={**load, "outbox_at_end_of_sending": 12}))
