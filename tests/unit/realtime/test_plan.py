"""The link's plan: reconnects spread out, the open chat first, and the held chats follow the user only."""

from __future__ import annotations

import random
import uuid

from desktop_chat.models import ChatId
from desktop_chat.realtime.plan import (
    HOT_CHATS,
    TRACK_WINDOW,
    TRACKS_PER_WINDOW,
    LinkTiming,
    TrackBudget,
    Watchdog,
    choose_hot_chats,
    deferred_delay,
    reconnect_delay,
)

TIMING = LinkTiming()


def chats(count: int) -> list[ChatId]:
    return [ChatId(uuid.uuid4()) for _ in range(count)]


def test_a_lost_link_comes_back_within_the_spread_and_backs_off_after_failures() -> None:
    rng = random.Random(7)
    first = [reconnect_delay(0, TIMING, rng) for _ in range(2000)]
    assert min(first) >= 0 and max(first) <= TIMING.reconnect_spread
    # Spread over the whole window, not bunched: every fifth of it gets its share.
    fifths = [
        sum(1 for d in first if k * TIMING.reconnect_spread / 5 <= d < (k + 1) * TIMING.reconnect_spread / 5)
        for k in range(5)
    ]
    assert min(fifths) > 300, fifths
    later = [reconnect_delay(3, TIMING, rng) for _ in range(500)]
    assert max(later) <= TIMING.max_backoff and max(later) > TIMING.reconnect_spread * 2
    assert max(reconnect_delay(60, TIMING, rng) for _ in range(100)) <= TIMING.max_backoff


def test_the_other_hot_chats_wait_until_the_first_wave_is_over() -> None:
    rng = random.Random(3)
    delays = [deferred_delay(TIMING, rng) for _ in range(1000)]
    assert TIMING.deferred_after <= min(delays) and max(delays) <= TIMING.deferred_after + TIMING.deferred_spread
    assert TIMING.deferred_after >= TIMING.reconnect_spread  # the two waves do not overlap


def test_the_join_budget_of_a_storm_stays_under_the_pro_plan() -> None:
    clients = 500  # a full Pro project (500 concurrent connections)
    first_wave = clients * (1 + 2) / TIMING.reconnect_spread  # user:<me>, the open chat and its typing
    second_wave = clients * 2 * (HOT_CHATS - 1) / TIMING.deferred_spread
    assert max(first_wave, second_wave) <= 500 * 0.6


def test_open_chats_come_first_then_the_recently_opened() -> None:
    a, b, c, d, e = chats(5)
    listed = {a, b, c, d, e}.__contains__
    assert choose_hot_chats([a], [a, b, c, d], listed) == ((a,), (b, c))
    assert choose_hot_chats([], [d, e], listed) == ((), (d, e))
    assert choose_hot_chats([a, b, c, d], [e], listed) == ((a, b, c, d), ())  # every open chat is held
    assert choose_hot_chats([a], [b, b, a, c], listed, limit=2) == ((a,), (b,))


def test_chats_no_longer_listed_are_never_held() -> None:
    a, b, c = chats(3)
    gone = {a, c}.__contains__
    assert choose_hot_chats([b], [b, c, a], gone) == ((), (c, a))


def test_the_presence_budget_keeps_under_supabases_five_per_thirty_seconds() -> None:
    budget = TrackBudget()
    now = 100.0
    for _ in range(TRACKS_PER_WINDOW):
        assert budget.wait(now) == 0.0
        budget.spend(now)
        now += 1.0
    assert TRACKS_PER_WINDOW < 5
    assert budget.wait(now) == 100.0 + TRACK_WINDOW - now  # the oldest must leave the window first
    assert budget.wait(100.0 + TRACK_WINDOW) == 0.0


def test_a_storms_tracks_fit_the_pro_plans_presence_rate() -> None:
    clients, tracks_each, pro_presence_per_second = 500, HOT_CHATS, 50
    assert clients * tracks_each / TIMING.presence_spread <= pro_presence_per_second


def test_the_watchdog_gives_a_quiet_link_two_seconds_and_a_slow_server_more() -> None:
    watchdog = Watchdog(floor=2.0, cap=10.0)
    assert watchdog.timeout() == 2.0  # nothing known yet
    for _ in range(20):
        watchdog.answered(0.002)  # a healthy loopback: the floor holds
    assert watchdog.timeout() == 2.0
    for _ in range(20):
        watchdog.answered(1.5)  # the server got slow: patience follows the replies
    assert 2.0 < watchdog.timeout() <= 10.0
    for _ in range(50):
        watchdog.answered(30.0)
    assert watchdog.timeout() == 10.0  # but never past the cap


def test_links_given_up_in_a_row_make_the_watchdog_more_patient_until_a_healthy_minute() -> None:
    watchdog = Watchdog(floor=2.0, cap=10.0)
    timeouts = []
    for _ in range(4):
        watchdog.silent()
        timeouts.append(watchdog.timeout())
    assert timeouts == [4.0, 8.0, 8.0, 8.0]  # an overloaded server is not answered with a reconnect storm
    for _ in range(Watchdog.HEALTHY_REPLIES - 1):
        watchdog.answered(0.002)
    assert watchdog.timeout() == 8.0
    watchdog.answered(0.002)
    assert watchdog.timeout() == 2.0
