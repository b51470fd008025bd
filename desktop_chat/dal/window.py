"""Which messages of a chat an open timeline holds: its *window*. Pure.

A timeline normally holds the newest messages down to some ``oldest`` seq: it is *at the live end*, new
messages join it at the bottom, and the cached newest window (``msgs:{chat}``) and the chat's ``rev``
cursor describe the same end of the chat. Jumping to an old message (a search result, a quoted reply)
opens a window ``[oldest, newest]`` somewhere in the middle instead: *detached*. A detached window is
never the newest, so

- it is never written into the cache (whose message list is by definition the contiguous newest window)
  and never starts or moves the rev cursor (the cursor is started from the newest window alone);
- a live message beyond ``newest`` does not go into it (that would leave a hole); it still goes to the
  cache and the chat list, so nothing is lost, and the window reaches it by paging newer or by joining;
- it grows downwards page by page (``after_newer_page``); the page that comes back short has reached the
  newest message, and from then on the window is at the live end again (``newest`` None). Ctrl+End joins
  at once by showing the newest page instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimelineWindow:
    """The seq range a timeline holds.

    Attributes:
        oldest: The lowest seq loaded (None: nothing loaded yet, an empty chat).
        newest: The highest seq loaded when the window is detached from the live end; None when it is at
            the live end (everything above ``oldest`` belongs in it).
    """

    oldest: int | None = None
    newest: int | None = None

    @property
    def at_live_end(self) -> bool:
        return self.newest is None

    @property
    def has_older(self) -> bool:
        return self.oldest is not None and self.oldest > 1

    def holds(self, seq: int | None) -> bool:
        """Whether a message with ``seq`` belongs in the window (None: an unsent message of ours, which
        belongs at the live end only)."""
        if seq is None:
            return self.at_live_end
        if self.oldest is not None and seq < self.oldest:
            return False
        return self.newest is None or seq <= self.newest

    def after_older_page(self, first_seq: int | None) -> TimelineWindow:
        """An older page starting at ``first_seq`` was prepended (None: it was empty)."""
        if first_seq is None or (self.oldest is not None and first_seq >= self.oldest):
            return self
        return TimelineWindow(first_seq, self.newest)

    def after_newer_page(self, last_seq: int | None, has_more: bool) -> TimelineWindow:
        """A newer page ending at ``last_seq`` was appended; ``has_more``: the chat has messages beyond it.
        A page that reached the newest message puts the window back at the live end."""
        if self.at_live_end:
            return self
        if not has_more:
            return TimelineWindow(self.oldest, None)
        newest = self.newest if last_seq is None or self.newest is None else max(self.newest, last_seq)
        return TimelineWindow(self.oldest, newest)


def window_around(
    target: int, older: tuple[int, ...], newer: tuple[int, ...], *, newer_has_more: bool
) -> TimelineWindow:
    """The window of a jump to ``target``: the seqs loaded up to and including it (``older``, ascending)
    and after it (``newer``, ascending); ``newer_has_more``: the chat has messages after ``newer``.

    The window is at the live end when nothing lies beyond what was loaded.
    """
    seqs = older + newer
    oldest = min(seqs) if seqs else None
    if not newer_has_more:
        return TimelineWindow(oldest, None)
    return TimelineWindow(oldest, max(seqs) if seqs else target)


def newest_window_holds(target: int, cached_first: int | None, cached_last: int | None) -> bool:
    """Whether the cached newest window (``cached_first``..``cached_last``, contiguous) already holds
    ``target``; then a jump needs no detached window, only the newest one shown down to the target."""
    return cached_first is not None and cached_last is not None and cached_first <= target <= cached_last


__all__ = ["TimelineWindow", "newest_window_holds", "window_around"]
