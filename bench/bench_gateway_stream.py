"""gateway_stream: the gateway's share of a sustained stream (commit → push), this gateway against the one of
``BASELINE_REV`` (main before ``SnapshotNudger``, issue 13 item 4), side by side in one run.

``bench gateway_realtime``'s *sustained* phase alone: a writer process inserts 200 messages/s into one chat,
a raw socket subscribed like the app times commit → push for each message; alternating 15 s phases
(baseline, current, baseline, current), one gateway running at a time, on the same throwaway stack.
The load average at the start and end is recorded (the machine is shared).
"""

from __future__ import annotations

import os
from typing import Any

from bench import bench_gateway_realtime as gateway
from devstack.throwaway import throwaway_stack

BASELINE_REV = "f290c83"
"""main before the snapshot nudger: its capture re-decoded up to 15-25 s of WAL on every poll."""


def run() -> dict[str, Any]:
    load_start = [round(value, 2) for value in os.getloadavg()]
    default = gateway.BASELINE_REV
    gateway.BASELINE_REV = BASELINE_REV
    try:
        with throwaway_stack() as (stack, info):
            figures = gateway._sustained(stack, info)
    finally:
        gateway.BASELINE_REV = default
    figures["load_average_start"] = load_start
    figures["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    return figures
