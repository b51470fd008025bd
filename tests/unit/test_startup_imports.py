"""The first frame's imports: what ``python -m desktop_chat`` imports before it can paint a window must not
include the server client's libraries, which the app imports behind the first paint (docs/architecture.md
§10). Run in a fresh interpreter, since this test session has imported everything already. No timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Imported when the server client is built (after the first paint), or when the dialog or picker is opened.
DEFERRED = (
    "supabase",
    "supabase_auth",
    "postgrest",
    "realtime",
    "httpx",
    "httpcore",
    "websockets",
    "emoji",
    "desktop_chat.backend.transport",
    "desktop_chat.realtime.frames",
    "desktop_chat.realtime.liveness",
    "desktop_chat.ui.settings_dialog",
    "desktop_chat.ui.diagnostics",
)


def first_frame_modules(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import desktop_chat.app",
        # What a restore builds before its first paint besides: the data layer, the bridge, the windows.
        "import desktop_chat.app, desktop_chat.dal.factory, desktop_chat.ui.main_window, desktop_chat.ui.sign_in_flow",
    ],
)
def test_the_first_frame_does_not_import_the_server_client(code: str) -> None:
    loaded = first_frame_modules(code)
    assert "desktop_chat.app" in loaded
    assert sorted(name for name in DEFERRED if name in loaded) == []
