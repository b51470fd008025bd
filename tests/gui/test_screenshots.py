"""Screenshots of the real windows on a real X server (Xvfb), written to tests/artifacts/ for people to look at.

The scenes run in a subprocess with the xcb platform (this process's QApplication is offscreen, and a
process has only one). The test checks that each picture shows something: enough different colours and
enough contrast that a blank, black or single-colour window would fail.
"""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtGui import QColor, QImage

from devstack.config import REPO_ROOT

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
EXPECTED = {
    "sign-in.png": (760, 640),
    "first-run.png": (760, 820),
    "chat.png": (1180, 760),
    "chat-unread.png": (1180, 760),
    "chat-offline.png": (1180, 760),
    "chat-dark.png": (1180, 760),
    "diagnostics.png": (980, 640),
    "chat-replies.png": (1180, 760),
    "chat-reactions.png": (1180, 760),
    "chat-receipts.png": (1180, 760),
    "chat-receipts-one-to-one.png": (1180, 760),
}
SIZED_BY_CONTENT = ("settings.png", "settings-dark.png", "emoji-picker.png")  # dialogs: as large as what they hold


def spread(image: QImage) -> tuple[int, float]:
    """How many distinct colours a grid of samples has, and the standard deviation of their lightness."""
    samples = [
        QColor(image.pixel(x, y)).lightness()
        for x in range(0, image.width(), max(1, image.width() // 80))
        for y in range(0, image.height(), max(1, image.height() // 60))
    ]
    colours = {image.pixel(x, y) for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)}
    mean = sum(samples) / len(samples)
    deviation = (sum((value - mean) ** 2 for value in samples) / len(samples)) ** 0.5
    return len(colours), deviation


def test_screenshots_of_sign_in_a_busy_chat_and_diagnostics(x_display: str) -> None:
    for name in (*EXPECTED, *SIZED_BY_CONTENT):
        (ARTIFACTS / name).unlink(missing_ok=True)
    env = {**os.environ, "DISPLAY": x_display, "QT_QPA_PLATFORM": "xcb"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.gui.scenes", str(ARTIFACTS)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name, size in [*EXPECTED.items(), *((name, None) for name in SIZED_BY_CONTENT)]:
        path = ARTIFACTS / name
        assert path.exists(), f"{name} was not written"
        image = QImage(str(path))
        if size is not None:
            assert (image.width(), image.height()) == size
        colours, deviation = spread(image)
        assert colours > 50, f"{name} looks blank ({colours} colours)"
        assert deviation > 8, f"{name} has no contrast (lightness deviation {deviation:.1f})"


def test_artifacts_are_not_committed() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(ARTIFACTS / "chat.png")], cwd=REPO_ROOT, check=False
    ).returncode
    assert ignored == 0


SEARCH_SCENES = ("search.png", "search-jump.png", "search-offline.png")


def test_screenshots_of_message_search_and_a_jump_far_back(x_display: str) -> None:
    for name in SEARCH_SCENES:
        (ARTIFACTS / name).unlink(missing_ok=True)
    env = {**os.environ, "DISPLAY": x_display, "QT_QPA_PLATFORM": "xcb"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.gui.scenes_search", str(ARTIFACTS)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in SEARCH_SCENES:
        path = ARTIFACTS / name
        assert path.exists(), f"{name} was not written"
        image = QImage(str(path))
        assert (image.width(), image.height()) == (1280, 760)
        colours, deviation = spread(image)
        assert colours > 50, f"{name} looks blank ({colours} colours)"
        assert deviation > 8, f"{name} has no contrast (lightness deviation {deviation:.1f})"
