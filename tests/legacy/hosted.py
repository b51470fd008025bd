"""Databases shaped like a hosted Supabase project, in the throwaway stack's cluster.

On a hosted project ``chat-migrate --db-url`` connects as ``postgres``, which is not a superuser: it has
``BYPASSRLS``, owns the database and everything the project's migrations created (``supabase db push``
runs them as that role), may read and write GoTrue's ``auth`` tables, and may not set superuser-only
settings. :func:`hosted_database` builds exactly that: the Supabase baseline applied by the superuser
(as the platform does), then the project's migrations and seed run *as the non-superuser role*
:data:`ROLE`. Each call clones a template database made once per cluster, so a test gets a fresh
database in a fraction of a second and can compare it with its state before a run.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from devstack import migrate
from devstack.config import REPO_ROOT

ROLE = "chat_migrator"
PASSWORD = "migrator-pw"
_templates: dict[str, str] = {}


def _with(url: str, *, user: str | None = None, password: str | None = None, database: str | None = None) -> str:
    parts = urlsplit(url)
    user = user or parts.username or "postgres"
    password = password if password is not None else parts.password or ""
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port}"
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


@dataclass(frozen=True)
class HostedDb:
    """A fresh database: ``url`` as the hosted-like owner role, ``admin_url`` as the superuser."""

    name: str
    url: str
    admin_url: str


async def _ensure_role(admin: asyncpg.Connection) -> None:
    exists = await admin.fetchval("select exists (select from pg_roles where rolname = $1)", ROLE)
    if not exists:
        await admin.execute(
            f"create role {ROLE} login nosuperuser createdb createrole replication bypassrls password '{PASSWORD}'"
        )


async def _build_template(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await _ensure_role(admin)
        await admin.execute(f"create database {name} owner {ROLE}")
    finally:
        await admin.close()
    platform_url = _with(admin_url, database=name)
    platform = await asyncpg.connect(platform_url)
    try:
        # The platform's part, as its superuser applies it; then what the platform grants `postgres`
        # (the auth tables) and what its supautils extension lets `postgres` do without owning the objects
        # (alter the publication, write policies on realtime.messages), here by ownership and membership.
        await migrate.apply_baseline(platform)
        await platform.execute(
            f"""
            grant all on schema auth to {ROLE};
            grant all on auth.users, auth.identities, auth.sessions, auth.refresh_tokens to {ROLE};
            grant all on all sequences in schema auth to {ROLE};
            grant usage on schema extensions to {ROLE};
            alter publication supabase_realtime owner to {ROLE};
            grant supabase_realtime_admin to {ROLE};
            """
        )
    finally:
        await platform.close()
    # `supabase db push` and the seed, as the project's (non-superuser) owner role.
    await migrate.apply(
        _with(admin_url, user=ROLE, password=PASSWORD, database=name), REPO_ROOT / "supabase", platform_url=platform_url
    )


@asynccontextmanager
async def hosted_database(admin_url: str) -> AsyncIterator[HostedDb]:
    """A fresh hosted-like database in the cluster of ``admin_url`` (a superuser URL); dropped afterwards."""
    template = _templates.get(admin_url)
    if template is None:
        template = f"migrate_template_{secrets.token_hex(4)}"
        await _build_template(admin_url, template)
        _templates[admin_url] = template
    name = f"migrate_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"create database {name} template {template} owner {ROLE}")
    finally:
        await admin.close()
    try:
        yield HostedDb(
            name,
            _with(admin_url, user=ROLE, password=PASSWORD, database=name),
            _with(admin_url, database=name),
        )
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f"drop database if exists {name} with (force)")
        finally:
            await admin.close()


async def table_fingerprint(url: str, schemas: tuple[str, ...] = ("public",)) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every table in ``schemas`` (as the superuser sees it)."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where c.relkind = 'r' and n.nspname = any($1::text[]) order by 1, 2",
            list(schemas),
        )
        out: dict[str, tuple[int, str]] = {}
        for row in tables:
            name = f'"{row["nspname"]}"."{row["relname"]}"'
            result = await conn.fetchrow(
                f"select count(*) as n, coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '') as sum"
                f" from {name} t"
            )
            assert result is not None
            out[f"{row['nspname']}.{row['relname']}"] = (int(result["n"]), str(result["sum"]))
        return out
    finally:
        await conn.close()
