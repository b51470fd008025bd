"""GoTrue's admin API through the official client's ``auth.admin``, under the service-role key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import bcrypt
import httpx
import pytest
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthApiError

from tests.integration.db.conftest import Db
from tests.integration.gateway.conftest import ALICE_EMAIL, ClientFactory, Gateway

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(gateway: Gateway) -> AsyncIterator[AsyncClient]:
    """A server-side client with the service-role key, as tools and migrations use the admin API."""
    async with httpx.AsyncClient(timeout=30) as http:
        options = AsyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False)
        yield await acreate_client(gateway.url, gateway.service_role_key, options)


async def _sign_in(make_client: ClientFactory, email: str, password: str) -> str:
    client = await make_client()
    session = await client.auth.sign_in_with_password({"email": email, "password": password})
    assert session.user is not None
    return session.user.id


async def test_create_get_update_and_delete_a_user(
    service: AsyncClient, make_client: ClientFactory, db: Db, unique: str
) -> None:
    email = f"admin-made-{unique}@example.com"
    created = await service.auth.admin.create_user(
        {
            "email": email,
            "password": "admin-pass-1",
            "email_confirm": True,
            "user_metadata": {"display_name": "Made By Admin"},
            "app_metadata": {"plan": "pro"},
        }
    )
    user = created.user
    assert (user.email, user.user_metadata, user.role) == (email, {"display_name": "Made By Admin"}, "authenticated")
    assert user.app_metadata == {"provider": "email", "providers": ["email"], "plan": "pro"}
    assert user.email_confirmed_at is not None
    assert await db.pool.fetchval("select display_name from public.profiles where id = $1", uuid.UUID(user.id)) == (
        "Made By Admin"
    )
    assert await _sign_in(make_client, email, "admin-pass-1") == user.id

    fetched = await service.auth.admin.get_user_by_id(user.id)
    assert fetched.user.email == email
    updated = await service.auth.admin.update_user_by_id(
        user.id,
        {
            "user_metadata": {"display_name": "Renamed By Admin", "x": 1},
            "app_metadata": {"plan": None},
            "password": "admin-pass-2",
        },
    )
    assert updated.user.user_metadata == {"display_name": "Renamed By Admin", "x": 1}
    assert updated.user.app_metadata == {"provider": "email", "providers": ["email"]}
    assert await db.pool.fetchval("select display_name from public.profiles where id = $1", uuid.UUID(user.id)) == (
        "Renamed By Admin"
    )
    assert await _sign_in(make_client, email, "admin-pass-2") == user.id

    await service.auth.admin.delete_user(user.id)
    with pytest.raises(AuthApiError) as gone:
        await service.auth.admin.get_user_by_id(user.id)
    assert (gone.value.status, gone.value.code, gone.value.message) == (404, "user_not_found", "User not found")
    assert await db.pool.fetchval("select count(*) from public.profiles where id = $1", uuid.UUID(user.id)) == 0


@pytest.mark.parametrize("prefix", ["2a", "2b", "2y"])
async def test_create_with_a_bcrypt_password_hash(
    service: AsyncClient, make_client: ClientFactory, unique: str, prefix: str
) -> None:
    email = f"hashed-{prefix}-{unique}@example.com"
    hashed = bcrypt.hashpw(b"imported-pass", bcrypt.gensalt(4, prefix=b"2b")).decode().replace("$2b$", f"${prefix}$")
    created = await service.auth.admin.create_user({"email": email, "password_hash": hashed, "email_confirm": True})
    assert await _sign_in(make_client, email, "imported-pass") == created.user.id


async def test_admin_errors_are_gotrues(
    service: AsyncClient, http: httpx.AsyncClient, gateway: Gateway, unique: str
) -> None:
    with pytest.raises(AuthApiError) as taken:
        await service.auth.admin.create_user({"email": ALICE_EMAIL, "password": "whatever-1"})
    assert (taken.value.status, taken.value.code) == (422, "email_exists")
    with pytest.raises(AuthApiError) as both:
        await service.auth.admin.create_user(
            {"email": f"both-{unique}@example.com", "password": "a-pass-1", "password_hash": "$2a$10$x"}
        )
    assert (both.value.status, both.value.message) == (400, "Only a password or a password hash should be provided")
    as_user = await http.get("/auth/v1/admin/users", headers=gateway.headers(ALICE_EMAIL))
    assert (as_user.status_code, as_user.json()) == (403, {"code": "not_admin", "message": "User not allowed"})
    anonymous = await http.get("/auth/v1/admin/users", headers={"apikey": gateway.anon_key})
    assert anonymous.status_code == 401
    not_uuid = await http.get("/auth/v1/admin/users/123", headers=_service_headers(gateway))
    assert (not_uuid.status_code, not_uuid.json()["message"]) == (404, "user_id must be an UUID")


def _service_headers(gateway: Gateway) -> dict[str, str]:
    return {"apikey": gateway.service_role_key, "Authorization": f"Bearer {gateway.service_role_key}"}


async def test_list_users_pages_with_gotrues_headers(
    service: AsyncClient, http: httpx.AsyncClient, gateway: Gateway
) -> None:
    users = await service.auth.admin.list_users(page=1, per_page=2)
    assert len(users) == 2
    everyone = await service.auth.admin.list_users(per_page=1000)
    emails = [u.email for u in everyone]
    assert ALICE_EMAIL in emails
    created = [u.created_at for u in everyone]
    assert created == sorted(created, reverse=True)
    raw = await http.get("/auth/v1/admin/users", params={"page": 1, "per_page": 1}, headers=_service_headers(gateway))
    total = int(raw.headers["x-total-count"])
    assert total == len(everyone)
    assert raw.json()["aud"] == "authenticated"
    assert raw.headers["link"] == (
        f'<{gateway.url}/auth/v1/admin/users?page=2&per_page=1>; rel="next", '
        f'<{gateway.url}/auth/v1/admin/users?page={total}&per_page=1>; rel="last"'
    )
    found = await http.get("/auth/v1/admin/users", params={"filter": "alice@"}, headers=_service_headers(gateway))
    assert [u["email"] for u in found.json()["users"]] == [ALICE_EMAIL]


async def test_soft_delete_and_bans(service: AsyncClient, make_client: ClientFactory, db: Db, unique: str) -> None:
    email = f"soft-{unique}@example.com"
    user = (await service.auth.admin.create_user({"email": email, "password": "soft-pass-1"})).user
    banned = await service.auth.admin.update_user_by_id(user.id, {"ban_duration": "1h30m"})
    assert banned.user.banned_until is not None
    with pytest.raises(AuthApiError) as refused:
        await _sign_in(make_client, email, "soft-pass-1")
    assert refused.value.code == "user_banned"
    unbanned = await service.auth.admin.update_user_by_id(user.id, {"ban_duration": "none"})
    assert unbanned.user.banned_until is None
    assert await _sign_in(make_client, email, "soft-pass-1") == user.id

    await service.auth.admin.delete_user(user.id, should_soft_delete=True)
    row = await db.pool.fetchrow("select email, deleted_at from auth.users where id = $1", uuid.UUID(user.id))
    assert row is not None and row["email"] is None and row["deleted_at"] is not None
    with pytest.raises(AuthApiError):
        await _sign_in(make_client, email, "soft-pass-1")
