"""``python -m tests.legacy --redis URL [--users N --rooms N --messages N] [--dirty]``: fill a legacy store."""

from __future__ import annotations

import argparse
import time

import redis

from tests.legacy.dirt import write_dirty_store
from tests.legacy.generate import generate
from tests.legacy.writer import LegacyServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.legacy", description=__doc__)
    parser.add_argument("--redis", required=True, metavar="URL")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--dirty", action="store_true", help="write the small dirty store instead")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis)
    started = time.perf_counter()
    if args.dirty:
        store = write_dirty_store(LegacyServer(client))
        print(f"dirty store: users {store.users}, rooms {store.rooms}")
    else:
        out = generate(client, users=args.users, rooms=args.rooms, messages=args.messages)
        print(f"{out.users} users, {out.rooms} rooms, {out.messages} messages in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
