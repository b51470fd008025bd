"""Legacy users become Supabase Auth users (or are linked to existing ones), with profiles.

An account is written the way GoTrue writes one for a confirmed e-mail sign-up: an ``auth.users`` row
(``aud``/``role`` ``authenticated``, the address lower-cased, ``email_confirmed_at`` set, app metadata
``{"provider": "email", "providers": ["email"]}``, the token columns GoTrue reads as strings set to
``''`` rather than NULL) and an ``email`` identity. ``encrypted_password`` is the legacy bcrypt hash as
it is: GoTrue (Go's bcrypt) and devstack (Python's bcrypt) both accept ``$2b$`` hashes, so people sign in
with their old password. Only columns the project's ``auth.users`` has are written, so the same code works
on devstack and on a hosted project whatever GoTrue version it runs.

A legacy user whose address already belongs to a Supabase user (compared case-insensitively, as sign-in
does) is linked to that account: nothing about the account changes, the user just becomes the member and
sender of their legacy chats. The project's trigger on ``auth.users`` makes the profile (display name =
legacy user name); a linked account without a profile gets one, recorded so rollback removes it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import asyncpg

from chat_migrate import ids
from chat_migrate.db import SCHEMA
from chat_migrate.errors import MigrateError
from chat_migrate.model import LegacyUser

_BCRYPT = re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}")
BATCH = 1000

# What GoTrue writes for a new confirmed e-mail user; a column is written only if auth.users has it.
# The string-typed token columns must be '' (GoTrue cannot read NULL into them).
_GOTRUE_STRINGS = (
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change_token_current",
    "email_change",
    "phone_change",
    "phone_change_token",
    "reauthentication_token",
)
_GOTRUE_FALSE = ("is_super_admin", "is_sso_user", "is_anonymous")


def usable_hash(value: str | None) -> str | None:
    """The legacy hash if GoTrue can check passwords against it (bcrypt), else None."""
    if value is None:
        return None
    value = value.strip()
    return value if _BCRYPT.fullmatch(value) else None


def display_name(user: LegacyUser) -> str:
    name = (user.username or "").strip()
    return name[:100] if name else f"user {user.id}"


@dataclass(frozen=True)
class Account:
    """The Supabase account a legacy user ends up with."""

    legacy_id: int
    user_id: uuid.UUID
    email: str
    action: str  # "created" | "linked" | "existing" (done by an earlier run)


@dataclass
class UserPlan:
    """Who gets a new account, who is linked, who is already done."""

    create: list[Account] = field(default_factory=list)
    link: list[Account] = field(default_factory=list)
    done: list[Account] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    without_password: list[int] = field(default_factory=list)

    def accounts(self) -> dict[int, uuid.UUID]:
        return {a.legacy_id: a.user_id for a in [*self.create, *self.link, *self.done]}


async def plan_users(
    conn: asyncpg.Connection, users: dict[int, LegacyUser], emails: dict[int, str], *, bookkeeping: bool
) -> UserPlan:
    """Sort legacy users into create / link / already done, reading (never writing) the database."""
    plan = UserPlan()
    recorded: dict[int, asyncpg.Record] = {}
    if bookkeeping:
        rows = await conn.fetch(
            f"select u.legacy_id, u.user_id, u.email, u.username, u.action from {SCHEMA}.users u"
            f" join {SCHEMA}.runs r on r.id = u.run_id where r.status <> 'rolled_back'"
        )
        recorded = {row["legacy_id"]: row for row in rows}
    clash = [
        f"user:{uid} was {row['username']!r} when migrated and is {users[uid].username!r} now"
        for uid, row in recorded.items()
        if uid in users and row["username"] != users[uid].username
    ]
    if clash:
        raise MigrateError(
            "this database holds a migration of another legacy store (or the store was rewritten): "
            + "; ".join(clash[:3])
        )
    wanted = {uid: address for uid, address in emails.items() if uid not in recorded}
    existing_rows = await conn.fetch(
        "select id, email from auth.users where lower(email) = any($1::text[])", sorted(set(wanted.values()))
    )
    by_address: dict[str, list[asyncpg.Record]] = {}
    for row in existing_rows:
        by_address.setdefault(str(row["email"]).lower(), []).append(row)
    for uid in sorted(emails):
        if uid in recorded:
            row = recorded[uid]
            plan.done.append(Account(uid, row["user_id"], row["email"], "existing"))
            continue
        address = emails[uid]
        matches = by_address.get(address, [])
        if usable_hash(users[uid].password_hash) is None:
            plan.without_password.append(uid)
        if not matches:
            plan.create.append(Account(uid, ids.user_id(uid), address, "created"))
        elif len(matches) == 1 or sum(1 for m in matches if m["email"] == address) == 1:
            chosen = next((m for m in matches if m["email"] == address), matches[0])
            plan.link.append(Account(uid, chosen["id"], address, "linked"))
        else:
            plan.ambiguous.append(
                f"user:{uid} ({users[uid].username!r}): {len(matches)} Supabase users have the address {address}"
                " in different letter cases; give this user another address in --emails"
            )
    return plan


async def apply_users(
    conn: asyncpg.Connection, plan: UserPlan, users: dict[int, LegacyUser], run_id: int, columns: frozenset[str]
) -> None:
    """Create and link accounts, in transactions of :data:`BATCH` users, each with its bookkeeping."""
    for start in range(0, len(plan.create), BATCH):
        async with conn.transaction():
            await _create(conn, plan.create[start : start + BATCH], users, run_id, columns)
    for start in range(0, len(plan.link), BATCH):
        async with conn.transaction():
            await _link(conn, plan.link[start : start + BATCH], users, run_id)


async def _create(
    conn: asyncpg.Connection,
    accounts: list[Account],
    users: dict[int, LegacyUser],
    run_id: int,
    columns: frozenset[str],
) -> None:
    names = [display_name(users[a.legacy_id]) for a in accounts]
    hashes = [usable_hash(users[a.legacy_id].password_hash) for a in accounts]
    values: dict[str, str] = {
        "instance_id": "'00000000-0000-0000-0000-000000000000'::uuid",
        "id": "x.id",
        "aud": "'authenticated'",
        "role": "'authenticated'",
        "email": "x.email",
        # A user without a usable legacy hash gets no password (GoTrue: ''), and resets it by e-mail.
        "encrypted_password": "coalesce(x.hash, '')",
        "email_confirmed_at": "now()",
        "raw_app_meta_data": """'{"provider": "email", "providers": ["email"]}'::jsonb""",
        "raw_user_meta_data": "jsonb_build_object('display_name', x.name)",
        "created_at": "now()",
        "updated_at": "now()",
    }
    values.update(dict.fromkeys(_GOTRUE_STRINGS, "''"))
    values.update(dict.fromkeys(_GOTRUE_FALSE, "false"))
    values["email_change_confirm_status"] = "0"
    chosen = [name for name in values if name in columns]
    # Column names come from the fixed table above, filtered by the catalog; values are bound.
    await conn.execute(
        f"insert into auth.users ({', '.join(chosen)})"
        f" select {', '.join(values[name] for name in chosen)}"
        " from unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) as x (id, email, hash, name)",
        [a.user_id for a in accounts],
        [a.email for a in accounts],
        hashes,
        names,
    )
    await conn.execute(
        "insert into auth.identities (id, provider_id, user_id, identity_data, provider, created_at, updated_at)"
        " select x.identity, x.id::text, x.id,"
        "   jsonb_build_object('sub', x.id::text, 'email', x.email, 'email_verified', true, 'phone_verified', false),"
        "   'email', now(), now()"
        " from unnest($1::uuid[], $2::uuid[], $3::text[]) as x (id, identity, email)",
        [a.user_id for a in accounts],
        [ids.identity_id(a.legacy_id) for a in accounts],
        [a.email for a in accounts],
    )
    # The project's sign-up trigger normally made the profile already; this covers a schema without it.
    await conn.execute(
        "insert into public.profiles (id, display_name) select * from unnest($1::uuid[], $2::text[])"
        " on conflict (id) do nothing",
        [a.user_id for a in accounts],
        names,
    )
    await conn.execute(
        f"insert into {SCHEMA}.users (legacy_id, run_id, user_id, username, email, action)"
        " select x.legacy, $1, x.id, x.name, x.email, 'created'"
        " from unnest($2::bigint[], $3::uuid[], $4::text[], $5::text[]) as x (legacy, id, name, email)",
        run_id,
        [a.legacy_id for a in accounts],
        [a.user_id for a in accounts],
        [users[a.legacy_id].username for a in accounts],
        [a.email for a in accounts],
    )


async def _link(conn: asyncpg.Connection, accounts: list[Account], users: dict[int, LegacyUser], run_id: int) -> None:
    created = await conn.fetch(
        "insert into public.profiles (id, display_name) select * from unnest($1::uuid[], $2::text[])"
        " on conflict (id) do nothing returning id",
        [a.user_id for a in accounts],
        [display_name(users[a.legacy_id]) for a in accounts],
    )
    made = {row["id"] for row in created}
    await conn.execute(
        f"insert into {SCHEMA}.users (legacy_id, run_id, user_id, username, email, action, profile_created)"
        " select x.legacy, $1, x.id, x.name, x.email, 'linked', x.made"
        " from unnest($2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::boolean[])"
        " as x (legacy, id, name, email, made)",
        run_id,
        [a.legacy_id for a in accounts],
        [a.user_id for a in accounts],
        [users[a.legacy_id].username for a in accounts],
        [a.email for a in accounts],
        [a.user_id in made for a in accounts],
    )
