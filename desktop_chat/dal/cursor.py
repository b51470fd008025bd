"""The back-fill cursor of one chat. Pure.

``rev`` is a per-chat counter bumped by every insert, edit and soft delete, in commit order. The cursor
``c`` means: every change with ``rev <= c`` to the messages this client keeps (the cached newest page and
anything newer) has been applied. Realtime delivers changes in commit order, so an event with
``rev == c + 1`` simply advances it; an event further ahead means something was missed (a dropped
socket), so it is applied but the cursor waits, and a back-fill (``rev > c``) closes the gap. A row's
rev is overwritten by its next edit, so a gap cannot always be closed by events alone: only a back-fill
proves completeness, and then the cursor jumps to the highest rev it returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RevCursor:
    value: int = 0
    _ahead: set[int] = field(default_factory=set)

    def observe(self, rev: int) -> bool:
        """Record a change applied from realtime. True when it reveals a gap that needs a back-fill."""
        if rev <= self.value:
            return False
        if rev == self.value + 1:
            self.value = rev
            self._drain()
            return False
        self._ahead.add(rev)
        return True

    def backfilled(self, highest: int) -> None:
        """A back-fill returned every change above the cursor up to ``highest`` (its largest rev)."""
        if highest > self.value:
            self.value = highest
        self._drain()

    @property
    def has_gap(self) -> bool:
        return bool(self._ahead)

    def _drain(self) -> None:
        while self.value + 1 in self._ahead:
            self.value += 1
            self._ahead.discard(self.value)
        self._ahead = {rev for rev in self._ahead if rev > self.value}
