"""The single-instance guard: the data directory's lock, the raise socket, and what a crash leaves behind."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from desktop_chat.single_instance import (
    LOCK_NAME,
    MAX_SOCKET_PATH,
    OK,
    RAISE,
    UNKNOWN,
    InstanceLock,
    RaiseListener,
    SingleInstance,
    answer,
    ask_to_raise,
    hand_over,
    socket_path,
)


def test_a_second_claim_on_the_same_data_dir_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    first = SingleInstance.claim(tmp_path / "data", tmp_path / "run")
    assert first is not None
    # flock locks an open file, so a second open in the same process conflicts just like another process.
    assert SingleInstance.claim(tmp_path / "data", tmp_path / "run") is None
    assert SingleInstance.claim(tmp_path / "other", tmp_path / "run2") is not None  # another data dir is free
    assert (tmp_path / "data" / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    first.release()
    again = SingleInstance.claim(tmp_path / "data", tmp_path / "run")
    assert again is not None
    again.release()


def test_the_lock_of_a_process_that_died_does_not_block_a_start(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from desktop_chat.single_instance import InstanceLock
        assert InstanceLock.acquire(Path({str(tmp_path)!r})) is not None
        print("held", flush=True)
        time.sleep(60)
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            assert InstanceLock.acquire(tmp_path) is None
            holder.send_signal(signal.SIGKILL)  # a crash: nothing of the app's own clean-up runs
            holder.wait(timeout=30)
        finally:
            if holder.poll() is None:
                holder.kill()
    lock = InstanceLock.acquire(tmp_path)
    assert lock is not None and lock.held
    lock.release()
    assert not lock.held


async def test_a_raise_request_reaches_the_running_instance_and_is_answered(tmp_path: Path) -> None:
    raised: list[str] = []
    path = tmp_path / "run" / "instance.sock"
    listener = await RaiseListener.start(path, lambda: raised.append("raise"))
    try:
        assert path.stat().st_mode & 0o777 == 0o600  # no one else may ask
        assert await asyncio.to_thread(ask_to_raise, path, 5.0)
        assert raised == ["raise"]
    finally:
        listener.close()
    assert not path.exists()


async def test_a_socket_file_left_by_a_crash_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "instance.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # bound but never listening, and never removed: what a killed run leaves
    dead.close()
    assert path.exists()
    assert not await asyncio.to_thread(ask_to_raise, path, 0.2)  # nobody answers on it

    raised: list[str] = []
    listener = await RaiseListener.start(path, lambda: raised.append("raise"))
    try:
        assert await asyncio.to_thread(ask_to_raise, path, 5.0)
        assert raised == ["raise"]
    finally:
        listener.close()


async def test_a_second_start_waits_for_a_first_that_is_still_starting(tmp_path: Path) -> None:
    path = tmp_path / "instance.sock"
    raised: list[str] = []
    asking = asyncio.create_task(asyncio.to_thread(ask_to_raise, path, 30.0))
    await asyncio.sleep(0.3)  # no socket yet: the first start has the lock but does not listen yet
    assert not asking.done()
    listener = await RaiseListener.start(path, lambda: raised.append("raise"))
    try:
        assert await asking
        assert raised == ["raise"]
    finally:
        listener.close()


async def test_an_unknown_request_is_refused_and_raises_nothing(tmp_path: Path) -> None:
    path = tmp_path / "instance.sock"
    raised: list[str] = []
    listener = await RaiseListener.start(path, lambda: raised.append("raise"))
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b"quit\n")
        assert await reader.readline() == UNKNOWN
        writer.close()
        await writer.wait_closed()
        assert raised == []
    finally:
        listener.close()


async def test_closing_leaves_a_socket_that_a_later_run_put_there(tmp_path: Path) -> None:
    path = tmp_path / "instance.sock"
    first = await RaiseListener.start(path, lambda: None)
    later = await RaiseListener.start(path, lambda: None)  # replaced the file (as after a lost lock)
    first.close()
    assert path.exists()
    later.close()
    assert not path.exists()


def test_nothing_listening_is_a_failed_hand_over(tmp_path: Path) -> None:
    assert not ask_to_raise(tmp_path / "instance.sock", wait=0.2)
    # The running instance holds the lock but answers nowhere: the second start says so and exits 1.
    assert hand_over(tmp_path / "data", tmp_path / "run", wait=0.2) == 1


async def test_a_smoke_test_that_finds_the_app_running_fails_and_asks_nothing(tmp_path: Path) -> None:
    raised: list[str] = []
    listener = await RaiseListener.start(socket_path(tmp_path / "run", tmp_path / "data"), lambda: raised.append("x"))
    try:
        assert await asyncio.to_thread(hand_over, tmp_path / "data", tmp_path / "run", smoke_test=True) == 1
        assert await asyncio.to_thread(hand_over, tmp_path / "data", tmp_path / "run") == 0
        assert raised == ["x"]
    finally:
        listener.close()


def test_the_answer_to_each_request() -> None:
    assert answer(RAISE) == (OK, True)
    assert answer(b"raise") == (UNKNOWN, False)  # a line ends with a newline
    assert answer(b"") == (UNKNOWN, False)


def test_a_runtime_dir_too_deep_for_a_unix_socket_gets_a_short_path_both_starts_agree_on(tmp_path: Path) -> None:
    assert socket_path(tmp_path, tmp_path / "data") == tmp_path / "instance.sock"
    deep = tmp_path / ("d" * MAX_SOCKET_PATH)
    short = socket_path(deep, tmp_path / "data")
    assert len(os.fsencode(short)) <= MAX_SOCKET_PATH
    assert short == socket_path(deep, tmp_path / "data")
    assert short != socket_path(deep, tmp_path / "other data")
