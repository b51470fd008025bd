"""GoTrue's per-address rate limits: a token bucket per client address, as its limiter (tollbooth) keeps.

``[auth.rate_limit]`` in ``supabase/config.toml`` gives requests per 5 minutes; GoTrue turns that into a
refill rate and allows a burst of 30 on top, per client address and limit. Password sign-ins and refreshes
share the ``token_refresh`` bucket (GoTrue's ``/token`` limiter); sign-ups and user updates each have one of
``sign_in_sign_ups`` (its ``Signups`` and ``User`` limiters). Over the limit, GoTrue answers 429
``over_request_rate_limit``. Pure apart from the injectable clock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from devstack.gateway.auth.errors import AuthError

WINDOW_SECONDS = 300.0
BURST = 30
# Addresses remembered per limiter; the least recently seen are forgotten first (their buckets would have
# refilled by the time they return, or nearly so).
MAX_ADDRESSES = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Limiter:
    """A token bucket per key: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int = BURST, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True


class RateLimits:
    """The limiters of one gateway, from ``[auth.rate_limit]`` (requests per 5 minutes)."""

    def __init__(self, per_window: Mapping[str, float], *, clock: Callable[[], float] = time.monotonic) -> None:
        def limiter(name: str, default: float) -> Limiter:
            return Limiter(per_window.get(name, default) / WINDOW_SECONDS, clock=clock)

        self.token = limiter("token_refresh", 150)
        self.signup = limiter("sign_in_sign_ups", 30)
        self.user = limiter("sign_in_sign_ups", 30)

    @staticmethod
    def check(limiter: Limiter, address: str) -> None:
        if not limiter.allow(address):
            raise AuthError(429, "over_request_rate_limit", "Request rate limit reached")
