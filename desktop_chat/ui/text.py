"""Words the UI shows: times, day labels, typing lines, counts. Pure functions, no Qt."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

# A message the server stored this much later than its id says it was written waited in an outbox
# (offline); below it, the two clocks merely disagree a little and the server's time is shown.
QUEUED_FOR = timedelta(minutes=1)


def local(moment: datetime) -> datetime:
    """``moment`` in the machine's time zone (the models hold UTC)."""
    return moment.astimezone()


def clock(moment: datetime) -> str:
    """``14:05``."""
    return local(moment).strftime("%H:%M")


def list_time(moment: datetime, now: datetime) -> str:
    """The chat list's time column: the clock today, "Yesterday", a weekday this week, else a date."""
    when, today = local(moment), local(now).date()
    if when.date() == today:
        return when.strftime("%H:%M")
    if when.date() == today - timedelta(days=1):
        return "Yesterday"
    if today - when.date() < timedelta(days=7):
        return when.strftime("%a")
    if when.year == today.year:
        return f"{when.day} {when.strftime('%b')}"
    return f"{when.day} {when.strftime('%b %Y')}"


def day_label(day: date, today: date) -> str:
    """The timeline's day separator: "Today", "Yesterday", "Monday 24 November" (with the year if not this one)."""
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    label = f"{day.strftime('%A')} {day.day} {day.strftime('%B')}"
    return label if day.year == today.year else f"{label} {day.year}"


def written_at(message_id: UUID, stored_at: datetime) -> datetime:
    """When a message was written. Ids are UUIDv7, made by the sending client when the user pressed Enter,
    so for a message that waited in the outbox (sent offline) that is its id's time, not the later one the
    server gave it on arrival; otherwise (or for ids without a time) the server's."""
    if message_id.version != 7:
        return stored_at
    written = datetime.fromtimestamp((message_id.int >> 80) / 1000, UTC)
    return written if stored_at - written >= QUEUED_FOR else stored_at


def full_time(moment: datetime) -> str:
    """A tooltip's complete local time: "Wednesday 26 November 2026, 14:05"."""
    when = local(moment)
    return f"{when.strftime('%A')} {when.day} {when.strftime('%B %Y')}, {when.strftime('%H:%M')}"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 message``, ``3 messages``, ``1,200 messages``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


def typing_line(names: Sequence[str]) -> str:
    """ "Alice is typing…", "Alice and Bob are typing…", "Several people are typing…"."""
    if not names:
        return ""
    if len(names) == 1:
        return f"{names[0]} is typing…"
    if len(names) == 2:
        return f"{names[0]} and {names[1]} are typing…"
    return "Several people are typing…"


def one_line(text: str) -> str:
    """A message as a one-line preview (line breaks become spaces, runs of spaces collapse)."""
    return " ".join(text.split())


def initials(name: str) -> str:
    """Up to two letters for an avatar: "Alice Martin" → "AM", "bob" → "B", "Release 0.2" → "R"."""
    words = [word for word in name.replace("@", " ").split() if word[:1].isalpha()]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][0].upper()
    return (words[0][0] + words[-1][0]).upper()


def hue_for(key: str) -> int:
    """A stable hue (0..359) for a person or chat, so its avatar keeps its colour across runs."""
    return int.from_bytes(hashlib.blake2s(key.encode(), digest_size=2).digest(), "big") % 360


HUE_SLOTS = 12  # hues 30° apart: as many people as can be told apart by colour at a glance


def distinct_hues(keys: Iterable[str]) -> dict[str, int]:
    """Hues for the people of one chat, all different while there are at most ``HUE_SLOTS`` of them.

    Each person takes the slot of their own stable hue (``hue_for``) unless someone before them has it, then
    the next free one; people are taken in sorted order, so the same people get the same colours each time.
    """
    width = 360 // HUE_SLOTS
    taken: set[int] = set()
    hues: dict[str, int] = {}
    for key in sorted(set(keys)):
        slot = hue_for(key) // width
        if len(taken) < HUE_SLOTS:
            while slot in taken:
                slot = (slot + 1) % HUE_SLOTS
        taken.add(slot)
        hues[key] = slot * width + width // 2
    return hues


def byte_size(count: float) -> str:
    """``3.4 MB``."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")  # the loop returns at "GB"
