"""Screenshot scenes of message search and jumping: ``python -m tests.gui.scenes_search OUTPUT_DIR``.

Like ``tests.gui.scenes`` (run on a real display server): writes ``search.png`` (the panel with results
for a word, matches marked), ``search-jump.png`` (a chosen result 4,000 messages back: the chat opened
there with the message marked) and ``search-offline.png`` (the panel saying only saved messages were
searched), and prints their paths.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import qasync
from PySide6.QtWidgets import QApplication

from desktop_chat.config import Settings
from desktop_chat.dal.api import CacheStatus, ConnectionState, StoreStatus
from desktop_chat.ui.theme import Theme, app_icon
from tests.gui.fakes import populated_store
from tests.gui.scenes import NOW, main_window_scene, save, settle

HISTORY = 6000
SIZE = (1280, 760)


async def scenes(output: Path) -> list[Path]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    settings = Settings()
    theme = Theme(app, "light")
    written = []
    store, cast = populated_store(
        history=HISTORY, now=NOW - timedelta(minutes=1), history_ends=NOW - timedelta(hours=2)
    )
    team = store.chat_id("Team")
    store.add_message(store.chat_id("Bob"), cast.bob, "Did the nightly pipelines pass? The dashboard is red.")
    window, _bridge, _flow = await main_window_scene(store, theme, settings)
    window.resize(*SIZE)
    window.show()
    await settle()
    window.open_chat(team)
    await settle(0.3)

    panel = window.search_messages()
    panel.field.setText("pipel")
    panel.search_now()
    await settle(0.4)
    panel.step(1)
    panel.step(1)
    await settle(0.2)
    written.append(save(window, output / "search.png"))

    # An old one: far beyond the loaded pages, opened where it is, marked.
    def far_back() -> int | None:
        hits = enumerate(panel.model.hits)
        return next((row for row, hit in hits if hit.chat_id == team and hit.seq < HISTORY - 4000), None)

    while far_back() is None and panel.model.rowCount() < 400:
        panel.step(panel.model.rowCount())  # to the end of the results: the next page comes
        await settle(0.2)
    old = far_back()
    assert old is not None, "no result 4,000 messages back"
    panel.results.setCurrentIndex(panel.model.index(old, 0))
    panel.results.scrollTo(panel.model.index(old, 0))
    panel.choose_current()
    await settle(0.5)
    assert window.chat_panel.view.highlighted is not None, "the message jumped to is marked"
    written.append(save(window, output / "search-jump.png"))

    store.set_status(StoreStatus(connection=ConnectionState.OFFLINE, cache=CacheStatus.ONLINE, backend_reachable=False))
    panel.field.setText("dashboard")
    panel.search_now()
    await settle(0.4)
    written.append(save(window, output / "search-offline.png"))
    window.close_for_sign_out()
    await settle()
    return written


def main(argv: list[str]) -> int:
    output = Path(argv[1]) if len(argv) > 1 else Path("tests/artifacts")
    output.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(argv[:1])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(app_icon())
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        written = loop.run_until_complete(scenes(output))
    finally:
        loop.close()
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
