"""The command line's contract: exit codes, one-line errors, --json, progress lines (chat_migrate/cli.py)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from chat_migrate import cli
from chat_migrate.errors import Unavailable
from chat_migrate.progress import Reporter
from chat_migrate.report import render


def run_main(argv: list[str], outcome: Any) -> int:
    async def fake(args: Any, reporter: Reporter) -> Any:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    original = cli._dispatch
    cli._dispatch = fake  # type: ignore[assignment]
    try:
        return cli.main(argv)
    finally:
        cli._dispatch = original  # type: ignore[assignment]


def test_errors_are_one_line_with_their_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_main(
        ["verify", "--redis", "redis://x", "--db-url", "postgresql://x"],
        Unavailable("cannot reach Redis at x:6379: refused"),
    )
    out, err = capsys.readouterr()
    assert code == 3 and out == "" and err == "chat-migrate: cannot reach Redis at x:6379: refused\n"
    code = run_main(["verify", "--json"], Unavailable("nope"))
    out, _ = capsys.readouterr()
    assert code == 3 and json.loads(out) == {"command": "verify", "ok": False, "error": "nope"}


def test_success_and_failure_summaries(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["verify", "--json"], ({"command": "verify", "differences": 0}, True)) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert run_main(["verify"], ({"command": "verify", "differences": 2, "first_differences": ["a", "b"]}, False)) == 1
    out = capsys.readouterr().out
    assert out.startswith("verify: DIFFERENCES FOUND\n") and "  first differences:\n    - a\n" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["rollback"])  # --run is required
    assert exit_info.value.code == 2


def test_plain_progress_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    reporter = Reporter(stream, tty=False)
    with reporter.track("run 1", 1000, "messages") as tracker:
        tracker.advance(400)
        tracker.started -= 10  # as if ten seconds had passed
        tracker._last_line -= 10
        tracker.advance(100)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("chat-migrate: run 1: 500/1,000 messages (50%), ") and "s left" in lines[0]
    assert lines[-1].startswith("chat-migrate: run 1: 500/1,000 messages (50%)")


def test_report_renders_nested_summaries() -> None:
    text = render({"command": "run", "ok": True, "created": {"messages": 1000000}, "rooms_changed_since_migrated": []})
    assert text == "run: done\n  created:\n    messages: 1,000,000\n  rooms changed since migrated: none"
