"""GUI: opening a 100,000-message chat, scrolling through 10,000 messages, memory with 100 chats opened.

The widgets run offscreen over ``tests/gui/fakes.py:FakeChatStore``, the same double the widget tests use,
so the figures are the UI's own cost (models, layout, painting), not the network's. Each scenario runs in
a fresh subprocess (``python -m bench.bench_gui SCENARIO`` prints its JSON) so that memory figures are not
inflated by the others.

- ``open``: from the click (``MainWindow.open_chat``) to the chat view painted with its first page, for a
  chat whose page the store already holds (switching back and forth between two 100,000-message chats).
  Goal: 100 ms.
- ``scroll``: scroll up from the newest message through 10,000 older ones, 120 px per frame (a mouse wheel
  notch); a frame is the scroll step and one pass of the event loop over everything it sets off (window
  growth, an older page arriving, layout with the anchor kept, painting what scrolled into view).
  Goal: p99 16 ms.
- ``memory``: resident memory after opening 100 chats of 300 messages one after the other, and scrolling
  each a screen up. Goal: 250 MB.

- ``startup``: a new process of the real app (``desktop_chat.app.run``, real data layer) against a throwaway
  stack, the session restored from the secrets file: process spawn to the chat list painted with rows, three
  ways, interleaved run by run: ``warm`` (an external Redis that outlived the app, the cache in it),
  ``persisted_online`` (the app's own Redis, started by the app and loading the snapshot it kept in the cache
  directory) and ``persisted_offline`` (the same with the gateway stopped: the saved session and the
  snapshot are all there is). Goal: 1.0 s for each, the same as warm.
- ``disk``: the bytes the app's own Redis keeps on disk per 10,000 cached messages (realistic messages,
  50 chats of 200), the snapshot's size with them minus its size empty.
- ``jump``: over the real data layer and a throwaway stack (not the fake: the window around an old message
  is read from Supabase), a chat of 100,000 messages: from ``MainWindow.open_message`` for the message
  50,000 back to the view painted with it centred, the server warm (one jump before the runs). Side by side
  in the same runs: Ctrl+End back to the newest page (painted), and ``ChatStore.open_at`` alone (the data
  layer's share). Goal: 150 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.stats import summary_ms

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = ("open", "scroll", "memory")
BIG_CHAT = 100_000
OPENS = 40
SCROLL_MESSAGES = 10_000
SCROLL_STEP_PX = 120
MEMORY_CHATS = 100
MEMORY_HISTORY = 300
WINDOW_SIZE = (1180, 760)


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS in /proc/self/status")


def run() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for scenario in SCENARIOS:
        result = subprocess.run(
            [sys.executable, "-m", "bench.bench_gui", scenario],
            cwd=REPO,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
        figures[scenario] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["start_to_chat_list"] = measure_startup()
    figures["jump"] = measure_jump()
    figures["disk"] = measure_disk()
    return figures


STARTUP_RUNS = 5
STARTUP_KINDS = ("warm", "persisted_online", "persisted_offline")


def measure_startup() -> dict[str, Any]:
    """Spawn the real app repeatedly and time the first painted chat list, as seen from the parent (process
    start included), the three kinds interleaved so that the machine's noise falls on all of them alike."""
    import tempfile

    from devstack.throwaway import throwaway_stack

    with throwaway_stack() as (stack, info), tempfile.TemporaryDirectory() as root:
        base = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # the secrets file, which persists
            "DESKTOP_CHAT_SUPABASE_URL": str(info["api_url"]),
            "DESKTOP_CHAT_SUPABASE_ANON_KEY": str(info["anon_key"]),
        }

        def environment(kind: str) -> dict[str, str]:
            home = f"{root}/{'warm' if kind == 'warm' else 'persisted'}"
            env = {
                **base,
                "DESKTOP_CHAT_CONFIG_DIR": f"{home}/config",
                "DESKTOP_CHAT_DATA_DIR": f"{home}/data",
                "DESKTOP_CHAT_CACHE_DIR": f"{home}/cache",
                "DESKTOP_CHAT_LOG_DIR": f"{home}/log",
                "DESKTOP_CHAT_RUNTIME_DIR": f"{home}/run",
            }
            if kind == "warm":
                env["DESKTOP_CHAT_REDIS_URL"] = str(info["redis_url"])  # survives the app, unlike its own
            return env

        def start(kind: str, mode: str) -> float:
            spawned = time.time()  # wall clock: compared with the child's own time.time() at first paint
            result = subprocess.run(
                [sys.executable, "-m", "bench.bench_gui", "startup", mode],
                cwd=REPO,
                env=environment(kind),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
            if result.returncode != 0 or not line.startswith("{") or "painted_at" not in line:
                raise RuntimeError(f"startup run ({kind}) failed: {result.stderr[-2000:]}")
            return float(json.loads(line)["painted_at"]) - spawned

        # Warm-up: each home signs in once (saving the session) and fills its cache.
        start("warm", "sign-in")
        start("persisted_online", "sign-in")
        times: dict[str, list[float]] = {kind: [] for kind in STARTUP_KINDS}
        for _ in range(STARTUP_RUNS):
            for kind in STARTUP_KINDS:
                if kind == "persisted_offline":
                    stack.gateway.stop()
                try:
                    times[kind].append(start(kind, "restore"))
                finally:
                    if kind == "persisted_offline":
                        stack.gateway.start()
        figures: dict[str, Any] = {kind: summary_ms(values) for kind, values in times.items()}
        warm = statistics.median(times["warm"])
        for kind in STARTUP_KINDS[1:]:
            figures[kind]["ratio_to_warm_p50"] = round(statistics.median(times[kind]) / warm, 2)
        figures["runs"] = STARTUP_RUNS
        figures["goal_ms"] = 1000
        figures["note"] = "process spawn to chat list painted, session restored; kinds interleaved"
        return figures


MESSAGES_ON_DISK = 10_000
DISK_CHATS = 50


def measure_disk() -> dict[str, Any]:
    """The snapshot the app's own Redis keeps, empty and with 10,000 realistic messages in 50 chats."""
    import random
    import tempfile

    from bench.bench_cache import realistic_messages
    from desktop_chat.cache.factory import open_cache, snapshot_dir
    from desktop_chat.config import Settings
    from desktop_chat.models import ChatId, UserId
    from desktop_chat.telemetry.metrics import MetricsRegistry

    async def fill(home: Path, messages: int) -> int:
        settings = Settings(config_dir=home / "config", runtime_dir=home / "run", cache_dir=home / "cache")
        rng = random.Random(7)
        user = UserId(uuid.UUID(int=rng.getrandbits(128)))
        per_chat = messages // DISK_CHATS
        async with open_cache(settings, MetricsRegistry()) as cache:
            for _ in range(DISK_CHATS if messages else 0):
                chat = ChatId(uuid.UUID(int=rng.getrandbits(128)))
                await cache.set_messages(user, chat, realistic_messages(chat, per_chat, rng))
        return (snapshot_dir(settings) / "cache.rdb").stat().st_size  # written when the cache closed

    with tempfile.TemporaryDirectory() as root:
        empty = asyncio.run(fill(Path(root) / "empty", 0))
        full = asyncio.run(fill(Path(root) / "full", MESSAGES_ON_DISK))
    return {
        "messages": MESSAGES_ON_DISK,
        "chats": DISK_CHATS,
        "snapshot_bytes_empty": empty,
        "snapshot_bytes": full,
        "bytes_per_10000_messages": full - empty,
        "bytes_per_message": round((full - empty) / MESSAGES_ON_DISK, 1),
    }


def scenario_startup(mode: str) -> dict[str, Any]:
    """Run the real app; note when the chat list has painted rows, then shut it down the normal way.

    The main window is found by a 5 ms poll; from then on the chat list's viewport is watched for its
    paint events, and the first one with rows in the model is the moment noted (the poll's own render is
    the fallback when the rows were there already when the window was found). Watching the paint itself
    matters since the app builds its server client right after that paint, which would hold a poll back.
    """
    import signal

    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop_chat.app import Options, run
    from desktop_chat.ui.main_window import MainWindow

    if mode == "sign-in":
        _sign_in()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    result: dict[str, Any] = {}

    def painted() -> None:
        result["painted_at"] = time.time()
        timer.stop()
        os.kill(os.getpid(), signal.SIGTERM)  # the app's own orderly shutdown

    class PaintWatch(QObject):
        def __init__(self, view: Any) -> None:
            super().__init__(view)
            self.view = view
            view.viewport().installEventFilter(self)

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() != QEvent.Type.Paint or "painted_at" in result:
                return False
            model = self.view.model()
            if model is not None and model.rowCount() > 0:
                painted()
            return False

    watches: list[PaintWatch] = []

    def poll() -> None:
        for widget in app.topLevelWidgets():
            if isinstance(widget, MainWindow) and widget.isVisible() and not watches:
                view = widget.chat_list.list_view
                model = view.model()
                if model is not None and model.rowCount() > 0 and not view.grab().isNull():
                    painted()
                    return
                watches.append(PaintWatch(view))

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(poll)
    timer.start()
    result["code"] = run(Options())
    return result


def _sign_in() -> None:
    """The warm-up: sign in as alice through the data layer, which saves the session and fills the cache."""
    from desktop_chat.config import Settings
    from desktop_chat.dal.factory import open_data_layer

    async def sign_in() -> None:
        layer = await open_data_layer(Settings(), realtime=False)
        try:
            await layer.store.sign_in("alice@example.com", "password123")
            await layer.store.settle()
        finally:
            await layer.close()

    asyncio.run(sign_in())


# --- the scenarios, run inside the subprocess ---------------------------------------------------------
async def _main_window(store: Any, bridge: Any = None) -> Any:
    from PySide6.QtWidgets import QApplication

    from desktop_chat.config import Settings
    from desktop_chat.ui.bridge import StoreBridge
    from desktop_chat.ui.main_window import MainWindow
    from desktop_chat.ui.notifications import Notifier
    from desktop_chat.ui.theme import Theme, app_icon

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    bridge = bridge or StoreBridge(store, server_url="http://127.0.0.1:54321")
    profile = store.current_user
    window = MainWindow(
        bridge,
        profile,
        settings=Settings(),
        theme=Theme(app, "light"),
        notifier=Notifier(app_icon(), enabled=False),
        is_active=lambda: True,
    )
    window.resize(*WINDOW_SIZE)
    window.show()
    await bridge.refresh_chats()
    await asyncio.sleep(0.05)
    return window


async def _open_chat(window: Any, chat_id: Any) -> float:
    """Seconds from the click to the chat painted with its first page."""
    model = window.chat_panel.model
    viewport = window.chat_panel.view.viewport()
    shown = asyncio.Event()

    def on_reset() -> None:
        if model.chat_id == chat_id and model.rowCount() > 0:
            shown.set()

    model.modelReset.connect(on_reset)
    started = time.perf_counter()
    window.open_chat(chat_id)
    async with asyncio.timeout(30):
        await shown.wait()
    viewport.repaint()
    elapsed = time.perf_counter() - started
    model.modelReset.disconnect(on_reset)
    return elapsed


async def scenario_open() -> dict[str, Any]:
    from tests.gui.fakes import populated_store

    store, cast = populated_store()
    first = store.add_chat("Archive A", [cast.alice, cast.bob, cast.carol], history=BIG_CHAT)
    second = store.add_chat("Archive B", [cast.alice, cast.bob, cast.carol], history=BIG_CHAT)
    window = await _main_window(store)
    cold = await _open_chat(window, first)  # the very first open also builds the delegate's caches
    await store.open_chat(second)  # the store holds both pages from now on
    times = []
    for index in range(OPENS):
        times.append(await _open_chat(window, second if index % 2 == 0 else first))
        await asyncio.sleep(0.01)  # let the chat details and read marker settle, as between two clicks
    return {
        "chat_messages": BIG_CHAT,
        "first_open_ms": round(cold * 1000, 3),
        "open_from_cache": summary_ms(times),
        "goal_ms": 100,
    }


async def scenario_scroll() -> dict[str, Any]:
    from PySide6.QtCore import QCoreApplication

    from tests.gui.fakes import populated_store

    store, cast = populated_store()
    big = store.add_chat("Archive", [cast.alice, cast.bob, cast.carol], history=BIG_CHAT)
    window = await _main_window(store)
    await _open_chat(window, big)
    await asyncio.sleep(0.1)
    view = window.chat_panel.view
    model = window.chat_panel.model
    bar = view.verticalScrollBar()

    def top_seq() -> int:
        rows = view.visible_rows()
        return int(model.item(rows[0]).seq or BIG_CHAT) if rows else BIG_CHAT

    start_seq = top_seq()
    frames: list[float] = []
    scrolled = 0

    def scroll(done: asyncio.Future[None]) -> None:
        nonlocal scrolled
        # A plain callback, not a coroutine: processEvents() may then run other tasks' steps (the store's
        # load_older) inside the frame, which asyncio forbids inside a task.
        while scrolled < SCROLL_MESSAGES:
            started = time.perf_counter()
            bar.setValue(bar.value() - SCROLL_STEP_PX)  # the wheel notch: Qt scrolls the pixels it has
            QCoreApplication.processEvents()  # everything it sets off: edge checks, a page, layout, paint
            frames.append(time.perf_counter() - started)
            scrolled = start_seq - top_seq()
            if len(frames) > 100_000:
                done.set_exception(RuntimeError("scrolling does not get anywhere"))
                return
        done.set_result(None)

    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(scroll, done)
    await done
    return {
        "messages_scrolled": scrolled,
        "step_px": SCROLL_STEP_PX,
        "older_pages_loaded": store.call_names().count("load_older"),
        "rows_in_view_model": model.rowCount(),
        "rows_loaded": model.total_rows,
        "frame": summary_ms(frames),
        "goal_p99_ms": 16,
    }


async def scenario_memory() -> dict[str, Any]:
    from tests.gui.fakes import populated_store

    store, cast = populated_store()
    chats = [
        store.add_chat(f"Project {index:03}", [cast.alice, cast.bob, cast.carol], history=MEMORY_HISTORY)
        for index in range(MEMORY_CHATS)
    ]
    window = await _main_window(store)
    baseline = rss_mb()
    view = window.chat_panel.view
    for chat_id in chats:
        await _open_chat(window, chat_id)
        bar = view.verticalScrollBar()
        bar.setValue(max(0, bar.value() - view.viewport().height()))
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    return {
        "chats_opened": len(chats),
        "messages_per_chat": MEMORY_HISTORY,
        "rss_after_start_mb": baseline,
        "rss_after_opening_mb": rss_mb(),
        "goal_mb": 250,
    }


JUMP_HISTORY = 100_000
JUMP_BACK = 50_000
JUMP_RUNS = 20


def measure_jump() -> dict[str, Any]:
    """Run the ``jump`` scenario in a subprocess against a throwaway stack of its own."""
    from devstack.throwaway import throwaway_stack

    with throwaway_stack() as (_stack, info):
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "BENCH_API_URL": str(info["api_url"]),
            "BENCH_ANON_KEY": str(info["anon_key"]),
            "BENCH_DB_URL": str(info["db_url"]),
            "BENCH_REDIS_URL": str(info["redis_url"]),
        }
        result = subprocess.run(
            [sys.executable, "-m", "bench.bench_gui", "jump"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        if result.returncode != 0 or not line.startswith("{"):
            raise RuntimeError(f"jump scenario failed: {result.stderr[-2000:]}")
        figures: dict[str, Any] = json.loads(line)
        return figures


async def scenario_jump() -> dict[str, Any]:
    import tempfile

    from pydantic import SecretStr

    from desktop_chat.config import Settings
    from desktop_chat.dal.factory import open_data_layer
    from tests.history import write_history
    from tests.keyrings import MemoryKeyring

    root = Path(tempfile.mkdtemp(prefix="bench-jump-"))

    def settings(name: str, db: int) -> Settings:
        home = root / name
        return Settings(
            supabase_url=os.environ["BENCH_API_URL"],
            supabase_anon_key=SecretStr(os.environ["BENCH_ANON_KEY"]),
            redis_url=os.environ["BENCH_REDIS_URL"].rsplit("/", 1)[0] + f"/{db}",
            config_dir=home / "config",
            data_dir=home / "data",
            runtime_dir=home / "run",
            cache_dir=home / "cache",
            log_dir=home / "log",
        )

    speaker = await open_data_layer(settings("speaker", 1), keyring_backend=MemoryKeyring(), realtime=False)
    speaker_profile = await speaker.store.sign_up("speaker@example.com", "password123", "Sam Speaker")
    reader_profile = await speaker.store.sign_up("reader@example.com", "password123", "Rita Reader")
    await speaker.store.sign_in("speaker@example.com", "password123")
    chat = await speaker.store.create_chat("The long history", ["reader@example.com"])
    loading = time.perf_counter()
    await write_history(os.environ["BENCH_DB_URL"], chat, [speaker_profile.id, reader_profile.id], JUMP_HISTORY)
    load_s = time.perf_counter() - loading
    await speaker.close()

    reader = await open_data_layer(settings("reader", 2), keyring_backend=MemoryKeyring())
    await reader.store.sign_in("reader@example.com", "password123")
    await reader.store.settle()
    from desktop_chat.ui.bridge import StoreBridge

    bridge = StoreBridge(reader.store, server_url=os.environ["BENCH_API_URL"])
    window = await _main_window(reader.store, bridge)
    panel = window.chat_panel
    view, model = panel.view, panel.model
    target = JUMP_HISTORY - JUMP_BACK

    async def painted(signal: Any, start: Callable[[], None], ready: Callable[[], bool]) -> float:
        done = asyncio.Event()

        def on_signal(*_: object) -> None:
            if ready():
                done.set()

        signal.connect(on_signal)
        started = time.perf_counter()
        start()
        async with asyncio.timeout(30):
            await done.wait()
        view.viewport().repaint()
        elapsed = time.perf_counter() - started
        signal.disconnect(on_signal)
        return elapsed

    def target_on_screen(seq: int) -> bool:
        message_id = model.row_of_seq(seq)
        row = model.row_of(message_id) if message_id is not None else None
        return row is not None and row in view.visible_rows()

    def newest_shown() -> bool:
        return not model.has_newer() and model.rowCount() > 0 and model.item(model.rowCount() - 1).seq == JUMP_HISTORY

    await _open_chat(window, chat)
    await painted(bridge.chat_opened_at, lambda: window.open_message(chat, target - 10_000), lambda: True)  # warm-up
    jumps, newest, data_layer = [], [], []
    for run_index in range(JUMP_RUNS):
        seq = target + (run_index % 2)  # two neighbours in turn: each jump reads its window again
        jumps.append(
            await painted(
                bridge.chat_opened_at,
                lambda seq=seq: window.open_message(chat, seq),
                lambda seq=seq: target_on_screen(seq),
            )
        )
        if not target_on_screen(seq):
            raise RuntimeError(f"message {seq} is not on screen after the jump")
        newest.append(await painted(bridge.chat_opened, panel.show_newest, newest_shown))
        started = time.perf_counter()
        await reader.store.open_at(chat, seq)
        data_layer.append(time.perf_counter() - started)
        await reader.store.open_chat(chat)
        await asyncio.sleep(0.05)
    window.close()
    await reader.close()
    return {
        "chat_messages": JUMP_HISTORY,
        "back": JUMP_BACK,
        "history_load_s": round(load_s, 1),
        "jump_painted": summary_ms(jumps),
        "newest_painted": summary_ms(newest),
        "open_at_data_layer": summary_ms(data_layer),
        "ratio_jump_to_newest_p50": round(statistics.median(jumps) / statistics.median(newest), 2),
        "goal_ms": 150,
        "note": "open_message to painted with the message on screen; server warm; real data layer and stack",
    }


def _run_scenario(scenario: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        result: dict[str, Any] = loop.run_until_complete(scenario())
        return result
    finally:
        loop.close()


if __name__ == "__main__":
    name = sys.argv[1]
    if name == "startup":
        print(json.dumps(scenario_startup(sys.argv[2])))
        sys.exit(0)
    chosen = {"open": scenario_open, "scroll": scenario_scroll, "memory": scenario_memory, "jump": scenario_jump}[name]
    print(json.dumps(_run_scenario(chosen)))
