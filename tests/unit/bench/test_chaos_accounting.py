"""The chaos suite's accounting: sent, stored, shown once, lost, duplicated and heal time."""

from __future__ import annotations

import pytest

from bench.chaos.accounting import FaultWindow, SentMessage, ViewRecord, account

CHAT = "chat-1"


def sent(key: str, t: float, sender: str = "alice", chat: str = CHAT) -> SentMessage:
    return SentMessage(key, sender, chat, t)


def view(name: str, *observations: tuple[str, float, int, int]) -> ViewRecord:
    record = ViewRecord(name, opened=0.0)
    for key, t, copies, confirmed in observations:
        record.observe(key, t, copies, confirmed)
    return record


def test_a_message_pending_then_confirmed_is_settled_when_confirmed() -> None:
    record = view("alice", ("m", 1.0, 1, 0), ("m", 1.2, 1, 1))
    assert record.settled_at("m") == 1.2
    assert record.shown_once_now("m")


def test_settled_is_the_start_of_the_final_run_of_once_confirmed() -> None:
    # Shown, gone (a view reset by a back-fill), shown again: settled when it came back for good.
    record = view("bob", ("m", 1.0, 1, 1), ("m", 2.0, 0, 0), ("m", 3.0, 1, 1), ("m", 4.0, 1, 1))
    assert record.settled_at("m") == 3.0


def test_a_message_not_shown_at_the_end_is_not_settled() -> None:
    assert view("bob", ("m", 1.0, 1, 1), ("m", 2.0, 0, 0)).settled_at("m") is None
    assert view("bob", ("m", 1.0, 1, 0)).settled_at("m") is None  # still pending
    assert view("bob").settled_at("m") is None


def test_everything_shown_once_heals_from_the_fault_end() -> None:
    fault = FaultWindow("gateway down", started=10.0, ended=20.0)
    messages = [sent("before", 5.0), sent("during", 12.0, "bob"), sent("after", 21.0)]
    alice = view("alice", ("before", 5.1, 1, 1), ("during", 23.0, 1, 1), ("after", 21.1, 1, 1))
    bob = view("bob", ("before", 5.2, 1, 1), ("during", 22.5, 1, 1), ("after", 21.3, 1, 1))
    tally = account(messages, {"before": 1, "during": 1, "after": 1}, {CHAT: [alice, bob]}, [fault])
    assert (tally.sent, tally.stored, tally.shown_once, tally.lost, tally.duplicated) == (3, 3, 3, 0, 0)
    # "during" was shown everywhere 3 s after the fault ended; "after" took only its own 0.3 s.
    assert tally.heal_s == pytest.approx(3.0)
    assert tally.fault_heal_s == [pytest.approx(3.0)]
    assert tally.worst_message == "during"
    assert tally.latency_max_s == pytest.approx(0.2)  # "before" settled before the fault: plain latency
    assert tally.ok()


def test_a_message_sent_after_the_fault_counts_its_own_delay_only() -> None:
    fault = FaultWindow("black-hole", started=10.0, ended=10.0)
    alice = view("alice", ("late", 30.0, 1, 1))
    bob = view("bob", ("late", 45.0, 1, 1))
    tally = account([sent("late", 30.0)], {"late": 1}, {CHAT: [alice, bob]}, [fault])
    assert tally.heal_s == pytest.approx(15.0)  # from its sending, not from the fault's end
    assert not tally.ok()  # later than 10 s


def test_a_message_missing_in_one_view_is_lost_and_never_heals() -> None:
    fault = FaultWindow("surrogate", started=10.0, ended=10.0)
    alice = view("alice", ("m", 11.1, 1, 1))
    bob = view("bob")
    tally = account([sent("m", 11.0)], {"m": 1}, {CHAT: [alice, bob]}, [fault])
    assert (tally.lost, tally.shown_once, tally.stored) == (1, 0, 1)
    assert tally.missing_by_view == {"bob": 1}
    assert tally.lost_sent_after_fault_end == 1
    assert tally.heal_s is None and tally.fault_heal_s == [None]
    assert not tally.ok()


def test_a_message_never_stored_is_lost_even_if_the_sender_shows_it_pending() -> None:
    alice = view("alice", ("m", 1.0, 1, 0))
    tally = account([sent("m", 1.0)], {}, {CHAT: [alice]}, [])
    assert (tally.lost, tally.not_stored) == (1, 1)
    assert tally.unconfirmed_by_view == {"alice": 1}


def test_a_message_ever_shown_twice_or_stored_twice_is_duplicated() -> None:
    alice = view("alice", ("a", 1.0, 1, 1), ("b", 1.0, 1, 1))
    bob = view("bob", ("a", 1.5, 2, 2), ("a", 1.6, 1, 1), ("b", 1.5, 1, 1))  # a double bubble, for a moment
    tally = account([sent("a", 0.9), sent("b", 0.9)], {"a": 1, "b": 2}, {CHAT: [alice, bob]}, [])
    assert tally.duplicated == 2
    assert tally.doubled_by_view == {"bob": 1}
    assert tally.stored_twice == 1
    assert tally.shown_once == 0 and tally.lost == 0
    assert not tally.ok()


def test_stored_but_never_reported_sent_is_extra_and_must_be_shown_too() -> None:
    # SIGKILL between the outbox's commit and send() returning: the message exists; it must still arrive.
    fault = FaultWindow("app SIGKILL", started=5.0, ended=6.0)
    alice = view("alice#2", ("x", 8.0, 1, 1))
    bob = view("bob", ("x", 7.5, 1, 1))
    tally = account([], {"x": 1}, {CHAT: [alice, bob]}, [fault])
    assert (tally.sent, tally.extra, tally.shown_once, tally.lost) == (0, 1, 1, 0)
    assert tally.heal_s == pytest.approx(2.0)


def test_each_message_is_blamed_on_the_fault_it_was_sent_during_or_after() -> None:
    faults = [FaultWindow("first", 10.0, 11.0), FaultWindow("second", 40.0, 45.0)]
    messages = [sent("a", 10.5), sent("b", 41.0)]
    alice = view("alice", ("a", 12.0, 1, 1), ("b", 50.0, 1, 1))
    tally = account(messages, {"a": 1, "b": 1}, {CHAT: [alice]}, faults)
    assert tally.fault_heal_s == [pytest.approx(1.0), pytest.approx(5.0)]
    assert tally.heal_s == pytest.approx(5.0)


def test_a_lost_message_blames_the_fault_that_began_before_it_was_sent() -> None:
    faults = [FaultWindow("first", 10.0, 11.0), FaultWindow("second", 40.0, 45.0)]
    alice = view("alice", ("a", 12.0, 1, 1))
    tally = account([sent("a", 10.5), sent("b", 20.0)], {"a": 1, "b": 1}, {CHAT: [alice]}, faults)
    assert tally.lost == 1
    assert tally.fault_heal_s == [None, 0.0]
    # A message sent just before a fault began was still on its way: that fault is blamed.
    tally = account([sent("c", 39.5)], {"c": 1}, {CHAT: [view("alice")]}, faults)
    assert tally.fault_heal_s == [0.0, None]


def test_views_of_each_chat_are_checked_for_that_chats_messages_only() -> None:
    one = view("alice", ("a", 1.0, 1, 1))
    two = view("alice", ("b", 1.0, 1, 1))
    tally = account(
        [sent("a", 0.5, chat="one"), sent("b", 0.5, chat="two")], {"a": 1, "b": 1}, {"one": [one], "two": [two]}, []
    )
    assert (tally.shown_once, tally.lost) == (2, 0)


def test_a_message_stuck_since_one_fault_is_not_excused_by_a_later_one() -> None:
    # Deafened by the first fault, shown only after a reconnect caused by the second: 40 s late.
    faults = [FaultWindow("surrogate", 10.0, 10.0), FaultWindow("gateway down", 40.0, 45.0)]
    alice = view("alice", ("a", 12.1, 1, 1))
    bob = view("bob", ("a", 52.0, 1, 1))
    tally = account([sent("a", 12.0)], {"a": 1}, {CHAT: [alice, bob]}, faults)
    assert tally.fault_heal_s == [pytest.approx(40.0), 0.0]
    assert tally.heal_s == pytest.approx(40.0)


def test_a_message_sent_before_any_fault_but_held_up_by_it_is_blamed_on_it() -> None:
    fault = FaultWindow("gateway down", 10.0, 70.0)
    alice = view("alice", ("early", 5.1, 1, 1), ("held", 72.0, 1, 1))
    tally = account([sent("early", 5.0), sent("held", 7.0)], {"early": 1, "held": 1}, {CHAT: [alice]}, [fault])
    assert tally.fault_heal_s == [pytest.approx(2.0)]
    assert tally.latency_max_s == pytest.approx(0.1)
