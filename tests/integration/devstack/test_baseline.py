"""The baseline is a Supabase project's, where it matters to this project's migrations, seed and functions.

Checked against what supabase/postgres' init scripts and migrations and GoTrue's migrations set up: role
attributes, memberships and timeouts, the auth schema's owner, row level security and e-mail indexes on
GoTrue's tables, no defaults on its original token columns. And the project's migrations and seed apply
as a hosted project's ``supabase db push`` applies them: as a ``postgres`` that is not a superuser but
has BYPASSRLS, with the platform's baseline applied by its own superuser.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest

from devstack import migrate
from devstack.config import DB_PASSWORD, REPO_ROOT
from devstack.throwaway import throwaway_stack
from tests.conftest import StackHandle

pytestmark = pytest.mark.integration

ALICE = uuid.UUID("a11ce000-0000-4000-8000-000000000001")


async def _fetch(db_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def test_roles_inherit_with_supabases_memberships_and_timeouts(stack: StackHandle) -> None:
    roles = asyncio.run(
        _fetch(
            stack.db_url,
            "select rolname, rolinherit, rolbypassrls, coalesce(rolconfig, '{}') as config from pg_roles"
            " where rolname in ('anon', 'authenticated', 'service_role', 'authenticator') order by rolname",
        )
    )
    assert [(r["rolname"], r["rolinherit"], r["rolbypassrls"], sorted(r["config"])) for r in roles] == [
        ("anon", True, False, ["statement_timeout=3s"]),
        ("authenticated", True, False, ["statement_timeout=8s"]),
        ("authenticator", False, False, ["lock_timeout=8s", "statement_timeout=8s"]),
        ("service_role", True, True, []),
    ]
    members = asyncio.run(
        _fetch(
            stack.db_url,
            "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid"
            " where m.member = 'postgres'::regrole order by 1",
        )
    )
    assert [m["rolname"] for m in members] == ["anon", "authenticated", "service_role", "supabase_auth_admin"]


async def test_rest_applies_each_roles_timeouts_as_postgrest_does(stack: StackHandle) -> None:
    """PostgREST sets the switched-to role's settings per request; the login role's apply otherwise."""
    conn = await asyncpg.connect(stack.db_url)
    try:
        await conn.execute(
            "create or replace function public.gw_timeouts() returns text language sql stable as"
            " $$ select current_setting('statement_timeout') || '/' || current_setting('lock_timeout') $$;"
            " grant execute on function public.gw_timeouts() to anon, authenticated, service_role"
        )
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        seen = {}
        for role, key in (("anon", stack.anon_key), ("service_role", stack.service_role_key)):
            response = await http.post(
                "/rest/v1/rpc/gw_timeouts", json={}, headers={"apikey": key, "Authorization": f"Bearer {key}"}
            )
            seen[role] = response.json()
    assert seen == {"anon": "3s/8s", "service_role": "8s/8s"}


def test_gotrues_tables_have_rls_its_indexes_and_no_token_defaults(stack: StackHandle) -> None:
    tables = asyncio.run(
        _fetch(
            stack.db_url,
            "select c.relname, c.relrowsecurity, pg_get_userbyid(c.relowner) as owner from pg_class c"
            " where c.relnamespace = 'auth'::regnamespace and c.relkind = 'r' order by 1",
        )
    )
    assert [(t["relname"], t["relrowsecurity"], t["owner"]) for t in tables] == [
        ("identities", True, "supabase_auth_admin"),
        ("refresh_tokens", True, "supabase_auth_admin"),
        ("sessions", True, "supabase_auth_admin"),
        ("users", True, "supabase_auth_admin"),
    ]
    [schema] = asyncio.run(
        _fetch(stack.db_url, "select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'auth'")
    )
    assert schema[0] == "supabase_admin"
    defaults = asyncio.run(
        _fetch(
            stack.db_url,
            "select column_name, column_default from information_schema.columns where table_schema = 'auth'"
            " and table_name = 'users' and column_name = any($1::text[]) order by 1",
            ["confirmation_token", "recovery_token", "email_change_token_new", "email_change", "raw_app_meta_data",
             "raw_user_meta_data", "email_change_token_current", "reauthentication_token"],
        )
    )  # fmt: skip
    assert {d["column_name"]: d["column_default"] for d in defaults} == {
        "confirmation_token": None,
        "recovery_token": None,
        "email_change_token_new": None,
        "email_change": None,
        "raw_app_meta_data": None,
        "raw_user_meta_data": None,
        "email_change_token_current": "''::character varying",
        "reauthentication_token": "''::character varying",
    }
    indexes = asyncio.run(
        _fetch(
            stack.db_url, "select indexname, indexdef from pg_indexes where schemaname = 'auth' and tablename = 'users'"
        )
    )
    definitions = {i["indexname"]: i["indexdef"] for i in indexes}
    assert "users_email_key" not in definitions
    assert definitions["users_email_partial_key"] == (
        "CREATE UNIQUE INDEX users_email_partial_key ON auth.users USING btree (email) WHERE (is_sso_user = false)"
    )
    assert definitions["users_instance_id_email_idx"] == (
        "CREATE INDEX users_instance_id_email_idx ON auth.users USING btree (instance_id, lower((email)::text))"
    )


async def test_only_bypassrls_roles_see_gotrues_rows(stack: StackHandle) -> None:
    conn = await asyncpg.connect(stack.db_url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("create role gw_bypass bypassrls")
        await conn.execute("grant usage on schema auth to gw_bypass")
        await conn.execute("grant select on auth.users to authenticated, gw_bypass")
        await conn.execute("set local role authenticated")
        hidden = await conn.fetchval("select count(*) from auth.users")
        await conn.execute("reset role")
        await conn.execute("set local role gw_bypass")
        visible = await conn.fetchval("select count(*) from auth.users")
        await transaction.rollback()  # the role and the grants were only for this test
    finally:
        await conn.close()
    assert (hidden, visible > 0) == (0, True)


def test_migrations_and_seed_apply_as_a_non_superuser_postgres_with_bypassrls() -> None:
    """As `supabase db push` on a hosted project: the platform's superuser applied the baseline; `postgres`
    owns the database, is no superuser, and has CREATEDB, CREATEROLE, REPLICATION and BYPASSRLS."""
    with throwaway_stack(gateway=False, seed=False) as (stack, info):
        asyncio.run(_hosted(stack.config.host, stack.config.db_port, info["db_url"]))


async def _hosted(host: str, port: int, bootstrap_url: str) -> None:
    def url(user: str, database: str) -> str:
        return f"postgresql://{user}:{DB_PASSWORD}@{host}:{port}/{database}"

    # The platform's superuser takes over, and `postgres` becomes an ordinary role (as on hosted).
    conn = await asyncpg.connect(bootstrap_url)
    await conn.execute(f"create role supabase_admin_login superuser login password '{DB_PASSWORD}'")
    await conn.close()
    admin = await asyncpg.connect(url("supabase_admin_login", "postgres"))
    try:
        await admin.execute("alter role postgres rename to devstack_bootstrap")
        await admin.execute(
            f"create role postgres login password '{DB_PASSWORD}' nosuperuser createdb createrole replication bypassrls"
        )
        await admin.execute("create database hosted owner postgres")
    finally:
        await admin.close()
    platform = await asyncpg.connect(url("supabase_admin_login", "hosted"))
    try:
        await migrate.apply_baseline(platform)
        # Supabase's supautils extension lets `postgres` alter the publication and write policies on
        # realtime.messages, neither of which it owns; here ownership and membership stand in for it.
        await platform.execute("alter publication supabase_realtime owner to postgres")
        await platform.execute("grant supabase_realtime_admin to postgres")
    finally:
        await platform.close()

    report = await migrate.apply(
        url("postgres", "hosted"), REPO_ROOT / "supabase", seed=True, platform_url=url("supabase_admin_login", "hosted")
    )
    assert report.seeded and report.applied == sorted(p.name for p in (REPO_ROOT / "supabase/migrations").glob("*.sql"))

    project = await asyncpg.connect(url("postgres", "hosted"))
    try:
        assert not await project.fetchval("select rolsuper from pg_roles where rolname = current_user")
        # RLS is on for auth.users; `postgres` sees the seed's users through BYPASSRLS only.
        assert await project.fetchval("select count(*) from auth.users") == 3
        assert await project.fetchval("select count(*) from public.profiles") == 3
        owners = await project.fetch(
            "select distinct pg_get_userbyid(relowner) as owner from pg_class"
            " where relnamespace = 'public'::regnamespace"
        )
        assert [o["owner"] for o in owners] == ["postgres"]
        # A security definer function reading auth.users works for a signed-in caller: its owner bypasses RLS.
        async with project.transaction():
            await project.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
                json.dumps({"sub": str(ALICE), "role": "authenticated"}),
            )
            found = await project.fetch("select display_name from public.find_profile_by_email('BOB@example.com')")
        assert [f["display_name"] for f in found] == ["Bob"]
    finally:
        await project.close()

    # GoTrue writes users as supabase_auth_admin: the project's triggers on auth.users must work for it.
    auth = await asyncpg.connect(url("supabase_auth_admin", "hosted"))
    try:
        user = uuid.uuid4()
        await auth.execute(
            "insert into auth.users (instance_id, id, aud, role, email, raw_user_meta_data, created_at, updated_at,"
            " confirmation_token, recovery_token, email_change_token_new, email_change)"
            " values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated',"
            " 'gotrue@example.com', '{\"display_name\": \"From GoTrue\"}', now(), now(), '', '', '', '')",
            user,
        )
        await auth.execute(
            'update auth.users set raw_user_meta_data = \'{"display_name": "Renamed"}\' where id = $1', user
        )
    finally:
        await auth.close()
    check = await asyncpg.connect(url("postgres", "hosted"))
    try:
        assert await check.fetchval("select display_name from public.profiles where id = $1", user) == "Renamed"
    finally:
        await check.close()
