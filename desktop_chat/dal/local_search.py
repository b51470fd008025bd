"""Searching the locally cached messages while the server cannot be reached. Pure.

The server's search (``search_messages``) is full-text over every message the user may see; offline only
the cached windows (the newest messages of recently used chats) are at hand, so this is a plain scan of
those with rules close to the server's: every word of the query must start a word of the message (a
prefix, any case, accents ignored), and runs of Han, kana or Hangul match anywhere (they have no spaces).
Hits come newest first, with a snippet marked like the server's (``SNIPPET_START``/``SNIPPET_END``),
built from message text from which those markers were removed first, so a message cannot forge one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from desktop_chat.models import SNIPPET_END, SNIPPET_START, Message, SearchHit

SNIPPET_CHARS = 120  # about what the server's snippet shows
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def fold(text: str) -> str:
    """Text as compared: compatibility forms unified, any case, accents dropped (``Grüße`` = ``grusse``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return stripped.casefold()


def query_words(query: str) -> list[str]:
    """The searchable words of ``query`` (folded); none when it holds only blanks and punctuation."""
    return _WORD.findall(fold(query))


def _folded_with_map(text: str) -> tuple[str, list[int]]:
    """``fold(text)`` and, for each of its characters, the index of the character of ``text`` it came from
    (folding can change lengths: ``ß`` becomes ``ss``)."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        piece = fold(char)
        folded.append(piece)
        origin.extend([index] * len(piece))
    return "".join(folded), origin


def _matches(folded: str, words: list[str]) -> list[tuple[int, int]] | None:
    """Spans (in ``folded``) of each query word's matches, or None when some word is missing."""
    spans: list[tuple[int, int]] = []
    found_words = [(match.start(), match.end()) for match in _WORD.finditer(folded)]
    for word in words:
        found: list[tuple[int, int]] = []
        if _CJK.search(word):
            position = folded.find(word)
            while position >= 0:
                found.append((position, position + len(word)))
                position = folded.find(word, position + 1)
        else:
            # The whole word a prefix starts is highlighted, as the server's snippet does.
            found = [(start, end) for start, end in found_words if folded.startswith(word, start)]
        if not found:
            return None
        spans += found
    return sorted(spans)


def snippet_of(text: str, spans: list[tuple[int, int]], origin: list[int]) -> str:
    """A window of ``text`` around its first match, each match between the markers."""
    clean = text
    ranges = sorted({(origin[start], origin[end - 1] + 1) for start, end in spans if end > start})
    first = ranges[0][0] if ranges else 0
    begin = max(0, first - SNIPPET_CHARS // 3)
    end = min(len(clean), begin + SNIPPET_CHARS)
    out: list[str] = ["…" if begin > 0 else ""]
    position = begin
    for start, stop in ranges:
        if stop <= position or start >= end:
            continue
        start = max(start, position)
        stop = min(stop, end)
        out += [clean[position:start], SNIPPET_START, clean[start:stop], SNIPPET_END]
        position = stop
    out.append(clean[position:end])
    if end < len(clean):
        out.append("…")
    return "".join(out)


def search_cached(messages: Iterable[Message], query: str, limit: int = 30) -> list[SearchHit]:
    """The cached messages that match ``query``, newest first, at most ``limit``.

    Deleted messages and messages without a ``seq`` (not on the server yet) are never found.
    """
    words = query_words(query)
    if not words or limit < 1:
        return []
    hits: list[SearchHit] = []
    for message in messages:
        if message.deleted or message.seq is None or not message.content:
            continue
        text = message.content.replace(SNIPPET_START, " ").replace(SNIPPET_END, " ")
        folded, origin = _folded_with_map(text)
        spans = _matches(folded, words)
        if spans is None:
            continue
        hits.append(
            SearchHit(
                id=message.id,
                chat_id=message.chat_id,
                seq=message.seq,
                sender_id=message.sender_id,
                created_at=message.created_at,
                edited_at=message.edited_at,
                snippet=snippet_of(text, spans, origin),
            )
        )
    hits.sort(key=lambda hit: (hit.created_at, str(hit.id)), reverse=True)
    return hits[:limit]


__all__ = ["fold", "query_words", "search_cached", "snippet_of"]
