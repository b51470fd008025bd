"""``desktop-chat doctor [--json]``: check what the app depends on and say what is wrong, without Qt.

The checks themselves belong to the data layer (can Supabase be reached, is the keyring usable, does
Redis answer, can the outbox be opened...), in ``desktop_chat.dal.doctor``; this module prints the report
and turns it into an exit code.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TextIO

from desktop_chat.config import Settings

Report = Mapping[str, Any]
Diagnose = Callable[[Settings], Coroutine[Any, Any, Report]]


async def diagnose(settings: Settings) -> Report:
    """Run the data layer's checks (``desktop_chat.dal.doctor``) and return the report."""
    from desktop_chat.dal.doctor import diagnose as data_layer_checks

    return await data_layer_checks(settings)


def run_doctor(
    *,
    as_json: bool,
    settings: Settings | None = None,
    checks: Diagnose = diagnose,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the report; exit code 0 if every check passed, 1 if one failed, 2 if none could run."""
    out = out or sys.stdout  # looked up now, not at import: tests and callers may have replaced them
    err = err or sys.stderr
    settings = settings or Settings()
    try:
        report: Report = asyncio.run(checks(settings))
    except Exception as error:  # the checks themselves broke: say so, do not dump a traceback
        print(f"desktop-chat doctor: the checks could not run: {error}", file=err)
        return 2
    if as_json:
        print(json.dumps(report, indent=2, default=str), file=out)
    else:
        for check in report.get("checks", ()):
            mark = "ok  " if check.get("ok") else "FAIL"
            detail = f": {check['detail']}" if check.get("detail") else ""
            print(f"{mark} {check.get('name', '?')}{detail}", file=out)
        extra = {key: value for key, value in report.items() if key not in ("ok", "checks")}
        for key, value in extra.items():
            print(f"     {key}: {value}", file=out)
    return 0 if report.get("ok", False) else 1
