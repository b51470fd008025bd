"""A small legacy store with every kind of dirt real stores have, and what a migration must make of it.

Written through :class:`~tests.legacy.writer.LegacyServer` (the server's own writes) where the server can
produce the case, and as raw members where only older servers, other clients or manual edits could.
:data:`EXPECTED` says, room by room, which texts must arrive and in which order, and how many members of
each quarantine category there are, so the tests assert the outcome and not just "no crash".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.legacy.writer import LegacyServer

T0 = 1_700_000_000  # 2023-11-14
PASSWORDS = {"alice": "alice-legacy-pw", "bob": "bob-legacy-pw", "carol": "carol-legacy-pw"}
DOMAIN = "legacy.example"


@dataclass
class DirtyStore:
    """Ids of what :func:`write_dirty_store` wrote, and the outcome a migration must produce."""

    users: dict[str, int] = field(default_factory=dict)
    rooms: dict[str, str] = field(default_factory=dict)
    # room id -> texts in the order the chat must show them
    texts: dict[str, list[str]] = field(default_factory=dict)
    quarantine: dict[str, int] = field(default_factory=dict)
    quarantined_rooms: list[str] = field(default_factory=list)
    colliding: tuple[str, str] = ("Dave", "dave")
    gone_user: int = 0


def write_dirty_store(server: LegacyServer) -> DirtyStore:
    """Fill an empty Redis with the dirty store; returns what to expect."""
    store = DirtyStore()
    server.init()
    ids = store.users
    for name in ("alice", "bob", "carol"):
        ids[name] = server.create_user(name, PASSWORDS[name])
    ids["Dave"] = server.create_user("Dave", "dave-one")
    ids["dave"] = server.create_user("dave", "dave-two")
    ids["ghost"] = server.create_user("ghost", "ghost-pw")
    ids["nopass"] = server.create_user("nopass", "x")
    server.redis.hdel(f"user:{ids['nopass']}", "password")  # a hash whose password field is gone
    store.gone_user = ids["ghost"]
    alice, bob, carol, ghost = ids["alice"], ids["bob"], ids["carol"], ids["ghost"]

    # The shared room: escaping, int/str senders, int/float dates, equal scores, a date from the score.
    general = "0"
    store.rooms["general"] = general
    expected: list[str] = []

    def send(room: str, sender: int | str, text: str, date: float, bucket: list[str]) -> None:
        server.send(room, sender, text, date)
        bucket.append(text)

    send(general, alice, "Hello <everyone> & \"welcome\" to 'General'", T0, expected)
    send(general, str(bob), "typed &lt; literally, and &copy; too", T0 + 10, expected)  # from as a string
    send(general, carol, "fractional date", T0 + 20.25, expected)
    # Same score (T0 + 30) three times: the date decides (30 < 30.2 < 30.7), not the member bytes.
    server.send(general, alice, "second of three", T0 + 30.2)
    server.send(general, bob, "third of three", T0 + 30.7)
    server.send(general, carol, "first of three", T0 + 30)
    expected += ["first of three", "second of three", "third of three"]
    # Same date and score: member bytes decide ("from": 1 sorts before "from": 2).
    a = server.send(general, bob, "tie b", T0 + 40)
    b = server.send(general, alice, "tie a", T0 + 40)
    expected += [json.loads(raw)["message"] for raw in sorted([a, b])]
    # A message whose sender's hash is gone (migrated without a sender).
    send(general, ghost, "a message from someone who left", T0 + 50, expected)
    # Text limits: exactly 8000 characters, and 8000 characters only after unescaping.
    send(general, alice, "x" * 8000, T0 + 60, expected)
    send(general, bob, "<" * 8000, T0 + 61, expected)
    # Dates written by clients as strings, or missing (the score stands in).
    server.send_raw(
        general,
        json.dumps({"from": carol, "date": str(T0 + 70), "message": "date as a string", "roomId": "0"}).encode(),
        T0 + 70,
    )
    expected.append("date as a string")
    server.send_raw(general, json.dumps({"from": alice, "message": "no date at all", "roomId": "0"}).encode(), T0 + 80)
    expected.append("no date at all")
    store.texts[general] = expected

    # Dirt that is quarantined, in the shared room.
    quarantine = store.quarantine
    raw_dirt: list[tuple[bytes, float, str]] = [
        (b"{not json", T0 + 90, "not_json"),
        (b'\xff\xfe{"from": 1, "date": 1700000091, "message": "latin-1?"}', T0 + 91, "not_utf8"),
        (b"[1, 2, 3]", T0 + 92, "not_an_object"),
        (json.dumps({"from": "abc", "date": T0 + 93, "message": "bad sender"}).encode(), T0 + 93, "bad_sender"),
        (json.dumps({"date": T0 + 94, "message": "no sender"}).encode(), T0 + 94, "bad_sender"),
        (json.dumps({"from": alice, "date": T0 + 95}).encode(), T0 + 95, "no_text"),
        (json.dumps({"from": alice, "date": "soon", "message": "bad date"}).encode(), float("inf"), "bad_date"),
        (
            json.dumps({"from": alice, "date": T0 + 96, "message": "nul \u0000 inside"}).encode(),
            T0 + 96,
            "nul_character",
        ),
    ]
    for raw, score, category in raw_dirt:
        server.send_raw(general, raw, score)
        quarantine[category] = quarantine.get(category, 0) + 1
    server.send(general, alice, "", T0 + 97)
    server.send(general, bob, "   \n\t ", T0 + 98)
    quarantine["empty_text"] = 2
    server.send(general, carol, "y" * 8001, T0 + 99)
    quarantine["too_long"] = 1

    # A private room between two users who exist.
    ab = server.create_private_room(alice, bob)
    store.rooms["alice_bob"] = ab
    store.texts[ab] = []
    send(ab, alice, "hi bob, private", T0 + 100, store.texts[ab])
    send(ab, str(bob), "hi alice", T0 + 101.5, store.texts[ab])

    # A private room with a user who no longer exists (the hash of "ghost" is deleted below).
    ag = server.create_private_room(alice, ghost)
    store.rooms["alice_ghost"] = ag
    store.texts[ag] = []
    send(ag, ghost, "are you there?", T0 + 110, store.texts[ag])
    send(ag, alice, "yes", T0 + 111, store.texts[ag])

    # A private room whose two users never existed here: nobody could see it, so it is quarantined.
    orphan = "998:999"
    server.send_raw(
        orphan, json.dumps({"from": 998, "date": T0 + 120, "message": "lost", "roomId": orphan}).encode(), T0 + 120
    )
    store.quarantined_rooms.append(orphan)
    quarantine["room_without_members"] = 1

    # A named room; dave posts there without being listed in its member sets.
    server.name_room("5", "Book club")
    for uid in (carol, ids["Dave"]):
        server.redis.sadd(f"user:{uid}:rooms", "5")
    store.rooms["book_club"] = "5"
    store.texts["5"] = []
    send("5", carol, "next book?", T0 + 130, store.texts["5"])
    send("5", ids["dave"], "I am not listed here", T0 + 131, store.texts["5"])

    # The user whose hash is gone; the username key and room set stay behind, as real deletions leave them.
    server.redis.delete(f"user:{ghost}")
    server.online(alice)
    return store
