"""Realistic scenes over ``FakeChatStore`` for screenshots: ``python -m tests.gui.scenes OUTPUT_DIR``.

Run it on a real display server (the screenshot test starts Xvfb and sets ``QT_QPA_PLATFORM=xcb``); it
writes ``sign-in.png``, ``first-run.png``, ``chat.png``, ``chat-unread.png``, ``chat-offline.png``,
``chat-dark.png``, ``settings.png``, ``settings-dark.png``, ``diagnostics.png``, ``chat-replies.png``,
``chat-reactions.png``, ``chat-receipts.png``, ``chat-receipts-one-to-one.png`` and ``emoji-picker.png`` and
prints their paths.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import qasync
from PySide6.QtWidgets import QApplication, QWidget

from desktop_chat.config import Settings
from desktop_chat.dal.api import CacheStatus, ConnectionState, StoreStatus
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.sign_in import SignInWindow
from desktop_chat.ui.sign_in_flow import SignInFlow
from desktop_chat.ui.theme import Theme, app_icon
from tests.gui.fakes import FakeChatStore, populated_store

NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)


async def settle(seconds: float = 0.15) -> None:
    """Let layouts, delayed layouts and paints happen.

    Sleeping is enough: the qasync loop *is* the Qt event loop. (Calling processEvents() inside a coroutine
    would run other tasks' steps inside this one, which asyncio refuses.)
    """
    await asyncio.sleep(seconds)


def save(widget: QWidget, path: Path) -> Path:
    widget.grab().save(str(path))
    return path


def busy_store() -> FakeChatStore:
    """Alice's account mid-afternoon: a lively team chat with one message pending and one refused."""
    # The synthetic history ends yesterday evening, so today's messages follow a "Today" separator.
    store, cast = populated_store(history=180, now=NOW - timedelta(minutes=1), history_ends=NOW - timedelta(hours=19))
    team = store.chat_id("Team")
    design = store.chat_id("Design review")
    bob_chat = store.chat_id("Bob")
    earlier = NOW - timedelta(hours=3)
    store.add_message(design, cast.carol, "Updated the mockups for the settings dialog, have a look.", at=earlier)
    store.add_message(design, cast.carol, "I'd love your take on the dark theme colours.", at=earlier)
    yesterday = NOW - timedelta(days=1)
    store.add_message(bob_chat, cast.bob, "Can you review my pull request before lunch?", at=yesterday)
    store.add_message(bob_chat, cast.alice, "Sure, looking at it now.", at=yesterday)
    store.add_message(bob_chat, cast.bob, "Thanks!", at=yesterday)
    store.add_message(team, cast.carol, "Staging is back up, the upgrade went fine.", at=NOW - timedelta(minutes=5))
    store.add_message(team, cast.bob, "Great. Are we still on for the demo at three?", at=NOW - timedelta(minutes=4))
    store.add_message(
        team,
        cast.alice,
        "Yes! I'll share the slides in a minute.\nThe numbers from yesterday's run are in there too.",
        at=NOW - timedelta(minutes=3),
    )
    store.add_message(team, cast.carol, "Perfect, thanks Alice.", at=NOW - timedelta(minutes=2))
    return store


async def main_window_scene(
    store: FakeChatStore, theme: Theme, settings: Settings
) -> tuple[MainWindow, StoreBridge, SignInFlow]:
    bridge = StoreBridge(store, server_url=settings.supabase_url)
    notifier = Notifier(app_icon(), enabled=False, parent=bridge)
    flow = SignInFlow(
        bridge,
        settings=settings,
        theme=theme,
        notifier=notifier,
        icon=app_icon(),
        clock=lambda: NOW,
        is_active=lambda: True,
    )
    flow.start()
    for _ in range(100):
        if flow.main_window is not None:
            break
        await settle(0.02)
    window = flow.main_window
    assert window is not None, "the saved session should open the main window"
    return window, bridge, flow


async def chat_scene(theme: Theme, settings: Settings, *, width: int, height: int) -> tuple[MainWindow, FakeChatStore]:
    store = busy_store()
    window, bridge, _flow = await main_window_scene(store, theme, settings)
    window.resize(width, height)
    window.show()
    await settle()
    team = store.chat_id("Team")
    window.open_chat(team)
    await settle()
    await bridge.send(team, "Here is the deck: https://example.com/decks/q4-review-final-v3.pdf")
    await bridge.send(team, "And the benchmark sheet, in case anyone wants the raw figures")
    pending = store.pending()
    store.reject(pending[0].id, "You can no longer post in this chat")
    store.someone_typing(team, [store.user("bob@example.com")])
    store.set_status(StoreStatus(connection=ConnectionState.LIVE, cache=CacheStatus.ONLINE, outbox_depth=2))
    window.chat_panel.composer.set_text("Looks great, one small thing on slide 4:")
    await settle(0.6)  # past the read-marker debounce: what is on screen counts as read
    return window, store


async def conversation_scenes(window: MainWindow, store: FakeChatStore, output: Path) -> list[Path]:
    """Replies, reactions and read receipts in the Team chat and the one-to-one chat with Bob."""
    written = []
    store.set_status(StoreStatus(connection=ConnectionState.LIVE, cache=CacheStatus.ONLINE))
    alice, bob, carol = (store.user(f"{name}@example.com") for name in ("alice", "bob", "carol"))
    team = store.chat_id("Team")
    window.open_chat(team)
    await settle(0.3)
    panel = window.chat_panel
    for message_id in [m.id for m in store.pending()]:
        await panel._bridge.discard(message_id)
    slides = next(m for m in panel.model.items() if m.content.startswith("Yes! I'll share the slides"))
    gone = store.receive(team, carol, "Old link: https://example.com/draft (ignore)")
    store._replace(store._chats[team], gone.model_copy(update={"content": "", "deleted_at": NOW}))
    store.receive(team, bob, "Got them, the charts look great", reply_to=slides.id)
    store.receive(team, carol, "Which link did you mean?", reply_to=gone.id)
    question = store.receive(team, bob, "Can we move the demo to 3:30? The room is taken until then.")
    panel.reply_to(question)
    panel.composer.set_text("3:30 works for me")
    await settle(0.4)
    panel.view.scroll_to_newest()
    await settle(0.2)
    written.append(save(window, output / "chat-replies.png"))

    panel.composer.reset()
    store.react(team, question.id, carol, "👍")
    store.react(team, question.id, bob, "👍")
    store.react(team, question.id, carol, "🙏")
    await panel._bridge.toggle_reaction(team, question.id, "👍")  # alice's own, still on its way
    news = store.receive(team, carol, "Release 0.2 is live on the download page!")
    for person, emoji in ((bob, "🎉"), (alice, "🎉"), (bob, "🚀"), (carol, "🎉")):
        store.react(team, news.id, person, emoji)
    await settle(0.4)
    panel.view.scroll_to_newest()
    await settle(0.2)
    written.append(save(window, output / "chat-reactions.png"))
    picker = panel.view.pick_reaction(news)
    picker.search.setText("party")
    await settle(0.3)
    written.append(save(picker, output / "emoji-picker.png"))
    picker.reject()
    store.deliver_reactions()

    # Read receipts: in the group "Seen by N" where the count changes; one to one, the second tick.
    first = store.receive(team, alice, "Slides are final, sending them to the customer tonight")
    second = store.receive(team, alice, "Shout if anything is off")
    store.read_up_to(team, bob, second.seq or 0)
    store.read_up_to(team, carol, first.seq or 0)
    await settle(0.3)
    panel.view.scroll_to_newest()
    await settle(0.2)
    written.append(save(window, output / "chat-receipts.png"))
    bob_chat = store.chat_id("Bob")
    window.open_chat(bob_chat)
    await settle(0.3)
    await panel._bridge.send(bob_chat, "Merged it, thanks for the quick review")
    store.deliver(store.pending()[0].id)
    store.receive(bob_chat, bob, "Great, I'll deploy after lunch")
    await settle(0.2)
    store.read_up_to(bob_chat, bob, store.find_last(bob_chat).seq or 0)
    await settle(0.3)
    written.append(save(window, output / "chat-receipts-one-to-one.png"))
    return written


async def scenes(output: Path) -> list[Path]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    settings = Settings()
    theme = Theme(app, "light")
    written = []

    signed_out, _ = populated_store(signed_in=False)
    bridge = StoreBridge(signed_out, server_url=settings.supabase_url)
    flow = SignInFlow(
        bridge, settings=settings, theme=theme, notifier=Notifier(app_icon(), enabled=False), icon=app_icon()
    )
    flow.start()
    await settle()
    sign_in = flow.sign_in_window
    assert sign_in is not None
    sign_in.resize(760, 640)
    sign_in.prefill("alice@example.com")
    sign_in.password_edit.setText("not her password")
    sign_in.show_error("Wrong email or password.")
    await settle()
    written.append(save(sign_in, output / "sign-in.png"))
    flow.close_windows()

    first_run = SignInWindow(settings.supabase_url, ask_for_server=True, icon=app_icon())
    first_run.server_edit.setText("https://")
    first_run.resize(760, 820)
    first_run.show()
    await settle()
    first_run.email_edit.setText("dana@example.com")
    first_run.password_edit.setText("a password")
    first_run.show_error("Enter the project's public key (the anon or publishable key from its API settings).")
    await settle()
    written.append(save(first_run, output / "first-run.png"))
    first_run.close()

    window, chat_store = await chat_scene(theme, settings, width=1180, height=760)
    written.append(save(window, output / "chat.png"))

    dialog = window.show_settings()
    dialog.show_advanced(True)
    await settle(0.3)
    written.append(save(dialog, output / "settings.png"))
    dialog.reject()

    # Design review has a dozen messages Alice has not read: it opens where they start.
    design = chat_store.chat_id("Design review")
    carol = chat_store.user("carol@example.com")
    for number in range(14):
        chat_store.add_message(design, carol, f"Mockup {number + 1}: the settings dialog, take {number + 1}.")
    chat_store.set_read_position(design, chat_store.user("alice@example.com"), 2)
    window.open_chat(design)
    await settle(0.3)
    written.append(save(window, output / "chat-unread.png"))

    # Offline: what is saved is shown, a message waits to go out, and the status bar says so.
    chat_store.set_status(
        StoreStatus(connection=ConnectionState.OFFLINE, cache=CacheStatus.ONLINE, backend_reachable=False)
    )
    bob = chat_store.chat_id("Bob")
    window.open_chat(bob)
    await settle()
    await window._bridge.send(bob, "Typed on the train, sent when the connection is back")
    chat_store.set_status(
        StoreStatus(
            connection=ConnectionState.OFFLINE, cache=CacheStatus.ONLINE, outbox_depth=1, backend_reachable=False
        )
    )
    await settle(0.3)
    written.append(save(window, output / "chat-offline.png"))

    written += await conversation_scenes(window, chat_store, output)

    diagnostics = window.show_diagnostics()
    for _ in range(40):
        diagnostics.refresh()
    diagnostics.resize(980, 640)
    await settle()
    written.append(save(diagnostics, output / "diagnostics.png"))
    diagnostics.close()
    window.close_for_sign_out()

    theme.set_choice("dark")
    dark_window, _ = await chat_scene(theme, settings, width=1180, height=760)
    written.append(save(dark_window, output / "chat-dark.png"))
    dark_dialog = dark_window.show_settings()
    dark_dialog.show_advanced(True)
    await settle(0.3)
    written.append(save(dark_dialog, output / "settings-dark.png"))
    dark_dialog.reject()
    dark_window.close_for_sign_out()
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
