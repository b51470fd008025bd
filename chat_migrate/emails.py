"""Which e-mail address each legacy user gets (pure: no I/O apart from reading the CSV file).

Supabase Auth signs people in by e-mail; the legacy store only has user names. An address comes from
``--emails FILE.csv`` (``username,email`` rows; a row may name the user as ``user:{id}`` instead) or,
failing that, from ``--email-domain``: ``{username lower-cased}@{domain}``. GoTrue stores addresses
lower-cased, and so do we.

Two legacy users must never share an account (each would see the other's private rooms), so a user
whose address would collide with another legacy user's (``Dave`` and ``dave``), or whose name cannot be
an address, is a *blocker*: ``plan`` lists them, ``run`` refuses to start until the CSV gives them an
address. An existing Supabase user with the same address is not a blocker: the legacy user is linked to
that account (see :mod:`chat_migrate.users`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from chat_migrate.errors import BadInput
from chat_migrate.model import LegacyUser

# A practical address check (what GoTrue accepts in practice), not RFC 5322 in full.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_LOCAL = re.compile(r"[A-Za-z0-9._%+-]+")
_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
MAX_EMAIL = 255  # auth.users.email is varchar(255)


@dataclass(frozen=True)
class Blocker:
    """A legacy user who cannot get an account until the operator says which address to use."""

    user: int
    username: str | None
    reason: str

    def describe(self) -> str:
        return f"user:{self.user} ({self.username!r}): {self.reason}"


@dataclass
class EmailPlan:
    """Addresses by legacy user id, and the users who have none yet."""

    emails: dict[int, str] = field(default_factory=dict)
    blockers: list[Blocker] = field(default_factory=list)
    from_file: int = 0


def valid_email(address: str) -> bool:
    return len(address) <= MAX_EMAIL and _EMAIL.fullmatch(address) is not None


def check_domain(domain: str) -> str:
    domain = domain.strip().lstrip("@").lower()
    if not _DOMAIN.fullmatch(domain):
        raise BadInput(f"--email-domain {domain!r} is not a domain name (like example.com)")
    return domain


def load_email_file(path: Path) -> dict[str, str]:
    """``username,email`` rows (a header row and blank lines are fine); keys are user names or ``user:{id}``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise BadInput(f"cannot read --emails {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise BadInput(f"--emails {path} is not UTF-8 text") from None
    mapping: dict[str, str] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise BadInput(f"--emails {path}:{number}: expected two columns, username,email")
        name, address = row[0], row[1].strip()
        if number == 1 and address.lower() in ("email", "e-mail", "mail"):
            continue  # a header row
        if not valid_email(address):
            raise BadInput(f"--emails {path}:{number}: {address!r} is not an e-mail address")
        if name in mapping and mapping[name] != address.lower():
            raise BadInput(f"--emails {path}:{number}: {name!r} is given two addresses")
        mapping[name] = address.lower()
    return mapping


def assign(users: dict[int, LegacyUser], *, domain: str | None, mapping: dict[str, str]) -> EmailPlan:
    """An address for every legacy user, or a blocker saying why there is none."""
    plan = EmailPlan()
    wanted: dict[int, str] = {}
    for uid in sorted(users):
        user = users[uid]
        explicit = mapping.get(f"user:{uid}") or (mapping.get(user.username) if user.username is not None else None)
        if explicit is not None:
            wanted[uid] = explicit
            plan.from_file += 1
            continue
        if not user.username or not user.username.strip():
            plan.blockers.append(Blocker(uid, user.username, "has no username; give it an address in --emails"))
            continue
        if domain is None:
            plan.blockers.append(Blocker(uid, user.username, "has no address in --emails (and no --email-domain)"))
            continue
        local = user.username.strip().lower()
        address = f"{local}@{domain}"
        if not _LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
            plan.blockers.append(
                Blocker(uid, user.username, "cannot be the local part of an address; give it one in --emails")
            )
            continue
        if not valid_email(address):
            plan.blockers.append(Blocker(uid, user.username, f"{address!r} is not a valid address"))
            continue
        wanted[uid] = address
    holders: dict[str, list[int]] = {}
    for uid, address in wanted.items():
        holders.setdefault(address, []).append(uid)
    for address, uids in sorted(holders.items()):
        if len(uids) == 1:
            plan.emails[uids[0]] = address
            continue
        names = ", ".join(f"user:{uid} ({users[uid].username!r})" for uid in uids)
        for uid in uids:
            plan.blockers.append(
                Blocker(uid, users[uid].username, f"would share {address} with {names}; give each its own in --emails")
            )
    plan.blockers.sort(key=lambda blocker: blocker.user)
    return plan
