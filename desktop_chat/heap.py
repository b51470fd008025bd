"""Keeping the long-lived heap out of the garbage collector's way.

CPython's cyclic collector walks every tracked object of the generations it collects. By the time the
main window is up, this process holds ~140,000 of them that live as long as it does: the modules,
classes and functions of PySide6, pydantic, the Supabase client and ours, and the session's services.
They all end up in the oldest generation, and a full collection (which the interpreter starts by itself
once enough objects have survived into that generation, every so often in a long session with a busy
chat) walks all of them in one go, on the event loop's thread: 60-230 ms measured (``bench stream``'s
``full_collection``), a stall of several frames.

``gc.freeze()`` moves every object tracked at that moment to a permanent generation the collector never
walks. Reference counting still frees them when they go; only a reference cycle among them that becomes
garbage later stays until the process ends, which is why this is done once, after start-up, when what is
alive is what stays alive.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> int:
    """Move the objects alive now out of the collector's scans, once per process.

    Call it once start-up is over (the window shown, the session's services built). A second call does
    nothing: freezing again would keep whatever cyclic garbage exists at that moment forever.

    Returns:
        How many objects were frozen by this call (0 when the heap was already frozen).
    """
    if gc.get_freeze_count():
        return 0
    gc.freeze()
    return gc.get_freeze_count()
