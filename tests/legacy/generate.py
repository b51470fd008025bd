"""Fill a legacy store of any size quickly, with the bytes the legacy server would have written.

Users are registered as the server registers them (``user{n}`` with one of a few passwords: hashing
thousands of passwords at cost 10 would take minutes, and the layout is what matters, so each distinct
password is hashed once and its hash reused). Everyone is in the shared room ``0`` (General); a few
named rooms have members of their own; the rest are private rooms between two users. Messages are spread
over the rooms (the shared room gets a tenth), sent by room members, one to a few minutes apart, with
text that needs HTML escaping now and then; dates are mostly integers and sometimes floats, ``from`` is
mostly an integer and sometimes a string, as real stores have them. Everything is deterministic for a
given seed, and written through pipelines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import redis

from tests.legacy.writer import hash_password, member, private_room_id

PASSWORDS = ("password123", "hunter2-legacy", "correct horse battery", "s3cret&<pass>")
START = 1_600_000_000  # 2020-09-13
WORDS = (
    # Words of everyday chat, with the characters the server escapes.
    "hello", "there", "how", "are", "you", "today", "the", "build", "is", "green", "again", "lunch", "on",
    "friday", "see", "slide", "seven", "numbers", "ready", "for", "review", "<b>bold</b>", "fish", "&",
    "chips", "it's", '"quoted"', "5", ">", "3", "and", "2", "<", "4", "ok", "thanks",
)  # fmt: skip


@dataclass
class Generated:
    """What :func:`generate` wrote (for assertions and benchmark bookkeeping)."""

    users: int = 0
    rooms: int = 0
    messages: int = 0
    named_rooms: list[str] = field(default_factory=list)
    private_rooms: list[str] = field(default_factory=list)

    def password_of(self, user_id: int) -> str:
        return PASSWORDS[user_id % len(PASSWORDS)]


def _text(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(2, 24)))


def generate(
    client: redis.Redis, *, users: int, rooms: int, messages: int, named: int = 20, seed: int = 1
) -> Generated:
    """Write a store of ``users`` users, ``rooms`` rooms (the shared one included) and ``messages`` messages."""
    rng = random.Random(seed)
    hashes = [hash_password(p) for p in PASSWORDS]
    out = Generated(users=users, rooms=rooms, messages=messages)
    pipe = client.pipeline(transaction=False)
    pipe.set("total_users", users)
    pipe.set("room:0:name", "General")
    for uid in range(1, users + 1):
        name = f"user{uid}"
        pipe.set(f"username:{name}", f"user:{uid}")
        pipe.hset(f"user:{uid}", mapping={"username": name, "password": hashes[uid % len(hashes)]})
        pipe.sadd(f"user:{uid}:rooms", "0")
    pipe.execute()

    members: dict[str, list[int]] = {"0": list(range(1, users + 1))}
    named = min(named, max(rooms - 1, 0))
    for n in range(1, named + 1):
        room = str(n)
        pipe.set(f"room:{room}:name", f"Room {n} · {rng.choice(WORDS)}")
        group = sorted(rng.sample(range(1, users + 1), min(users, 20)))
        members[room] = group
        for uid in group:
            pipe.sadd(f"user:{uid}:rooms", room)
        out.named_rooms.append(room)
    seen: set[str] = set()
    while len(members) < rooms and users >= 2:
        a, b = rng.sample(range(1, users + 1), 2)
        room = private_room_id(a, b)
        if room in seen:
            continue
        seen.add(room)
        members[room] = [min(a, b), max(a, b)]
        pipe.sadd(f"user:{a}:rooms", room)
        pipe.sadd(f"user:{b}:rooms", room)
        out.private_rooms.append(room)
    pipe.execute()

    # The shared room gets a tenth; the others share the rest, unevenly (a few busy, many quiet).
    order = list(members)
    shared = messages // 10 if len(order) > 1 else messages
    weights = [rng.paretovariate(1.5) for _ in order[1:]]
    total_weight = sum(weights) or 1.0
    counts = [shared] + [int((messages - shared) * w / total_weight) for w in weights]
    counts[0] += messages - sum(counts)
    pending = 0
    for room, count in zip(order, counts, strict=True):
        group = members[room]
        date: float = START + rng.randint(0, 86_400 * 30)
        batch: dict[bytes, float] = {}
        for _ in range(count):
            date += rng.randint(1, 300)
            sender: int | str = rng.choice(group)
            stamp: int | float = int(date)
            roll = rng.random()
            if roll < 0.05:
                stamp = date + rng.random()  # a client that sent fractional seconds
            if roll > 0.97:
                sender = str(sender)  # a client that sent its id as a string
            raw = member(sender, stamp, _text(rng), room)
            batch[raw] = int(stamp)
            if len(batch) >= 5000:
                pipe.zadd(f"room:{room}", batch)
                pending += len(batch)
                batch = {}
            if pending >= 50_000:
                pipe.execute()
                pending = 0
        if batch:
            pipe.zadd(f"room:{room}", batch)
            pending += len(batch)
    pipe.execute()
    return out
