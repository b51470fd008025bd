"""The realtime link's state, apart from the manager: the UI and the data layer's first frame name it
without importing the realtime library (which the manager needs only once the link comes up)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ConnectionState"]


class ConnectionState(StrEnum):
    """The realtime link (what the status bar shows as the connection)."""

    OFFLINE = "offline"  # signed out, or the server cannot be reached
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
