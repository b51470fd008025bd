"""Presence state and diffs, with a phx_ref on every meta."""

from __future__ import annotations

from devstack.gateway.realtime.presence import PresenceRegistry

TOPIC = (False, "realtime:room")


def test_track_untrack_and_state() -> None:
    presence = PresenceRegistry()
    diff = presence.track(TOPIC, "a", "alice", {"online_at": 1})
    assert diff is not None and diff["leaves"] == {}
    (meta,) = diff["joins"]["alice"]["metas"]
    assert meta["online_at"] == 1 and meta["phx_ref"]
    presence.track(TOPIC, "b", "alice", {"online_at": 2})  # a second device of the same user
    presence.track(TOPIC, "c", "bob", {})
    state = presence.state(TOPIC)
    assert sorted(state) == ["alice", "bob"]
    assert [m["online_at"] for m in state["alice"]["metas"]] == [1, 2]
    refs = [m["phx_ref"] for metas in state.values() for m in metas["metas"]]
    assert len(set(refs)) == 3
    leave = presence.untrack(TOPIC, "a")
    assert leave == {"joins": {}, "leaves": {"alice": {"metas": [meta]}}}
    assert [m["online_at"] for m in presence.state(TOPIC)["alice"]["metas"]] == [2]
    assert presence.untrack(TOPIC, "a") is None
    assert presence.state((False, "realtime:other")) == {}


def test_retrack_is_a_leave_and_a_join_unless_nothing_changed() -> None:
    presence = PresenceRegistry()
    first = presence.track(TOPIC, "a", "alice", {"status": "online"})
    assert first is not None
    old = first["joins"]["alice"]["metas"][0]
    assert presence.track(TOPIC, "a", "alice", {"status": "online"}) is None
    update = presence.track(TOPIC, "a", "alice", {"status": "away"})
    assert update is not None
    assert update["leaves"] == {"alice": {"metas": [old]}}
    new = update["joins"]["alice"]["metas"][0]
    assert new["status"] == "away" and new["phx_ref_prev"] == old["phx_ref"] and new["phx_ref"] != old["phx_ref"]


def test_topics_are_separate() -> None:
    presence = PresenceRegistry()
    presence.track(TOPIC, "a", "alice", {})
    presence.track((True, "realtime:room"), "b", "bob", {})
    assert list(presence.state(TOPIC)) == ["alice"]
