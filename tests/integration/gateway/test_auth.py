"""``/auth/v1`` through the official client: sign-up, sign-in, refresh rotation, user, logout, errors."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt as pyjwt
import pytest
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from devstack.gateway.jwt import issue_access_token
from tests.integration.db.conftest import ALICE, Db
from tests.integration.gateway.conftest import ALICE_EMAIL, PASSWORD, ClientFactory, Gateway

pytestmark = pytest.mark.integration


async def _refresh_raw(http: httpx.AsyncClient, gateway: Gateway, token: str) -> httpx.Response:
    return await http.post(
        "/auth/v1/token",
        params={"grant_type": "refresh_token"},
        json={"refresh_token": token},
        headers={"apikey": gateway.anon_key},
    )


async def test_sign_up_returns_a_session_and_creates_the_profile(
    make_client: ClientFactory, db: Db, unique: str
) -> None:
    client = await make_client()
    email = f"New.User-{unique}@Example.com"
    response = await client.auth.sign_up(
        {"email": email, "password": "s3cret-pass", "options": {"data": {"display_name": "Newcomer"}}}
    )
    assert response.session is not None and response.user is not None
    user_id = uuid.UUID(response.user.id)
    assert response.user.email == email.lower()
    assert response.user.user_metadata["display_name"] == "Newcomer"
    assert response.session.refresh_token
    claims = pyjwt.decode(response.session.access_token, options={"verify_signature": False})
    assert claims["sub"] == str(user_id)
    assert claims["role"] == "authenticated"
    profile = await db.pool.fetchrow("select display_name from public.profiles where id = $1", user_id)
    assert profile is not None and profile["display_name"] == "Newcomer"
    identity = await db.pool.fetchrow("select provider from auth.identities where user_id = $1", user_id)
    assert identity is not None and identity["provider"] == "email"
    # The hash is the one pgcrypto's crypt() understands, as GoTrue's and the seed's are.
    assert await db.pool.fetchval(
        "select encrypted_password = extensions.crypt('s3cret-pass', encrypted_password) from auth.users where id = $1",
        user_id,
    )


async def test_seed_users_sign_in_with_their_seeded_password(
    make_client: ClientFactory, db: Db, stack_ttl: int
) -> None:
    client = await make_client()
    response = await client.auth.sign_in_with_password({"email": ALICE_EMAIL, "password": PASSWORD})
    session = response.session
    assert session is not None
    assert session.user.id == str(ALICE)
    assert session.expires_in == stack_ttl
    claims = pyjwt.decode(session.access_token, options={"verify_signature": False})
    assert (claims["sub"], claims["role"], claims["aud"], claims["email"]) == (
        str(ALICE),
        "authenticated",
        "authenticated",
        ALICE_EMAIL,
    )
    assert claims["exp"] - claims["iat"] == stack_ttl
    assert await db.pool.fetchval(
        "select exists (select from auth.sessions where id = $1 and user_id = $2)",
        uuid.UUID(claims["session_id"]),
        ALICE,
    )
    user = await client.auth.get_user()
    assert user is not None and user.user.email == ALICE_EMAIL


async def test_wrong_password_and_unknown_email_are_invalid_credentials(make_client: ClientFactory) -> None:
    client = await make_client()
    for email, password in ((ALICE_EMAIL, "wrong-password"), ("nobody-here@example.com", PASSWORD)):
        with pytest.raises(AuthApiError) as caught:
            await client.auth.sign_in_with_password({"email": email, "password": password})
        assert (caught.value.status, caught.value.code, caught.value.message) == (
            400,
            "invalid_credentials",
            "Invalid login credentials",
        )


async def test_signing_up_an_existing_email_is_user_already_exists(make_client: ClientFactory) -> None:
    client = await make_client()
    with pytest.raises(AuthApiError) as caught:
        await client.auth.sign_up({"email": ALICE_EMAIL.upper(), "password": "another-pass"})
    assert (caught.value.status, caught.value.code) == (422, "user_already_exists")


async def test_a_short_password_is_weak_password_with_reasons(make_client: ClientFactory, unique: str) -> None:
    client = await make_client()
    with pytest.raises(AuthWeakPasswordError) as caught:
        await client.auth.sign_up({"email": f"weak-{unique}@example.com", "password": "12345"})
    assert (caught.value.status, caught.value.code, caught.value.reasons) == (422, "weak_password", ["length"])


async def test_an_invalid_email_is_validation_failed(make_client: ClientFactory) -> None:
    client = await make_client()
    with pytest.raises(AuthApiError) as caught:
        await client.auth.sign_up({"email": "not-an-email", "password": "long-enough"})
    assert (caught.value.status, caught.value.code) == (400, "validation_failed")


async def test_errors_carry_the_api_version_header_and_gotrue_shape(http: httpx.AsyncClient, gateway: Gateway) -> None:
    response = await http.post(
        "/auth/v1/token",
        params={"grant_type": "password"},
        json={"email": ALICE_EMAIL, "password": "nope-nope"},
        headers={"apikey": gateway.anon_key},
    )
    assert response.status_code == 400
    assert response.headers["x-supabase-api-version"] == "2024-01-01"
    assert response.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}


async def test_refresh_rotates_and_reuse_follows_refresh_token_reuse_interval(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, db: Db, unique: str
) -> None:
    """GoTrue's rotation with ``refresh_token_reuse_interval = 10`` (supabase/config.toml).

    A used token whose successor is still the live one gets that same successor again (a client that lost
    the answer); another used token works within the interval; after it, reuse means theft and the whole
    session is revoked.
    """
    client = await make_client()
    signed_up = await client.auth.sign_up({"email": f"rotate-{unique}@example.com", "password": "rotate-me"})
    assert signed_up.session is not None
    first = signed_up.session.refresh_token
    refreshed = await client.auth.refresh_session()
    assert refreshed.session is not None
    second = refreshed.session.refresh_token
    assert second != first
    assert refreshed.session.user.id == signed_up.session.user.id

    again = await _refresh_raw(http, gateway, first)
    assert again.status_code == 200
    assert again.json()["refresh_token"] == second
    third = (await _refresh_raw(http, gateway, second)).json()["refresh_token"]
    within = await _refresh_raw(http, gateway, first)
    assert within.status_code == 200
    assert within.json()["refresh_token"] not in (first, second, third)

    # Ten seconds later: the used token has been revoked too long ago.
    await db.pool.execute(
        "update auth.refresh_tokens set updated_at = updated_at - interval '11 seconds' where token = $1", second
    )
    reused = await _refresh_raw(http, gateway, second)
    assert reused.status_code == 400
    assert reused.json() == {"code": "refresh_token_already_used", "message": "Invalid Refresh Token: Already Used"}
    # Every token of the session is revoked now; once the interval has passed for them too, none works.
    session_id = await db.pool.fetchval("select session_id from auth.refresh_tokens where token = $1", second)
    await db.pool.execute(
        "update auth.refresh_tokens set updated_at = updated_at - interval '11 seconds' where session_id = $1",
        session_id,
    )
    for token in (third, within.json()["refresh_token"]):
        after_reuse = await _refresh_raw(http, gateway, token)
        assert (after_reuse.status_code, after_reuse.json()["code"]) == (400, "refresh_token_already_used")


async def test_an_unknown_refresh_token_is_refresh_token_not_found(make_client: ClientFactory) -> None:
    client = await make_client()
    with pytest.raises(AuthApiError) as caught:
        await client.auth.refresh_session("no-such-token")
    assert (caught.value.status, caught.value.code) == (400, "refresh_token_not_found")


async def test_refresh_ignores_an_expired_bearer_token(http: httpx.AsyncClient, gateway: Gateway, unique: str) -> None:
    """The client refreshes with its expired access token in ``Authorization``; that must not matter."""
    signed_up = await http.post(
        "/auth/v1/signup",
        json={"email": f"expired-bearer-{unique}@example.com", "password": "whatever1"},
        headers={"apikey": gateway.anon_key},
    )
    session = signed_up.json()
    expired, _ = issue_access_token(
        gateway.jwt_secret,
        user_id=uuid.UUID(session["user"]["id"]),
        email=None,
        session_id=uuid.uuid4(),
        ttl=60,
        now=time.time() - 3600,
    )
    response = await http.post(
        "/auth/v1/token",
        params={"grant_type": "refresh_token"},
        json={"refresh_token": session["refresh_token"]},
        headers={"apikey": gateway.anon_key, "Authorization": f"Bearer {expired}"},
    )
    assert response.status_code == 200
    assert response.json()["user"]["id"] == session["user"]["id"]


async def test_update_user_merges_metadata_and_changes_the_password(make_client: ClientFactory, unique: str) -> None:
    client = await make_client()
    email = f"update-{unique}@example.com"
    await client.auth.sign_up(
        {"email": email, "password": "first-pass", "options": {"data": {"display_name": "U", "x": 1}}}
    )
    updated = await client.auth.update_user({"data": {"display_name": "Renamed", "x": None, "theme": "dark"}})
    assert updated.user.user_metadata == {"display_name": "Renamed", "theme": "dark"}
    fetched = await client.auth.get_user()
    assert fetched is not None and fetched.user.user_metadata == {"display_name": "Renamed", "theme": "dark"}

    with pytest.raises(AuthApiError) as same:
        await client.auth.update_user({"password": "first-pass"})
    assert (same.value.status, same.value.code) == (422, "same_password")
    with pytest.raises(AuthWeakPasswordError):
        await client.auth.update_user({"password": "short"})
    await client.auth.update_user({"password": "second-pass"})

    other = await make_client()
    with pytest.raises(AuthApiError):
        await other.auth.sign_in_with_password({"email": email, "password": "first-pass"})
    signed_in = await other.auth.sign_in_with_password({"email": email, "password": "second-pass"})
    assert signed_in.user is not None and signed_in.user.email == email


async def test_logout_scopes_revoke_the_right_sessions(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, unique: str
) -> None:
    email = f"logout-{unique}@example.com"
    laptop, phone, tablet = await make_client(), await make_client(), await make_client()
    await laptop.auth.sign_up({"email": email, "password": "logout-pw"})
    await phone.auth.sign_in_with_password({"email": email, "password": "logout-pw"})
    await tablet.auth.sign_in_with_password({"email": email, "password": "logout-pw"})
    phone_session = await phone.auth.get_session()
    tablet_session = await tablet.auth.get_session()
    assert phone_session is not None and tablet_session is not None

    # "others" from the laptop: phone and tablet are signed out, the laptop is not.
    await laptop.auth.sign_out({"scope": "others"})
    assert (await _refresh_raw(http, gateway, phone_session.refresh_token)).json()["code"] == "refresh_token_not_found"
    with pytest.raises(AuthApiError) as gone:
        await phone.auth.get_user(phone_session.access_token)
    assert (gone.value.status, gone.value.code) == (403, "session_not_found")
    laptop_session = (await laptop.auth.refresh_session()).session
    assert laptop_session is not None

    # "local" ends only the laptop's session; the client drops it.
    await laptop.auth.sign_out({"scope": "local"})
    assert await laptop.auth.get_session() is None
    assert (await _refresh_raw(http, gateway, laptop_session.refresh_token)).status_code == 400

    # "global" ends every session of the user.
    desktop = await make_client()
    await desktop.auth.sign_in_with_password({"email": email, "password": "logout-pw"})
    other = await make_client()
    await other.auth.sign_in_with_password({"email": email, "password": "logout-pw"})
    other_session = await other.auth.get_session()
    assert other_session is not None
    await desktop.auth.sign_out()
    assert await desktop.auth.get_session() is None
    assert (await _refresh_raw(http, gateway, other_session.refresh_token)).status_code == 400


async def test_logout_answers_204_with_an_empty_body(http: httpx.AsyncClient, gateway: Gateway, unique: str) -> None:
    signed_up = await http.post(
        "/auth/v1/signup",
        json={"email": f"logout-raw-{unique}@example.com", "password": "logout-pw"},
        headers={"apikey": gateway.anon_key},
    )
    token = signed_up.json()["access_token"]
    response = await http.post(
        "/auth/v1/logout",
        params={"scope": "global"},
        headers={"apikey": gateway.anon_key, "Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 204
    assert response.content == b""


async def test_user_endpoint_refuses_missing_forged_anonymous_and_expired_tokens(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    forged, _ = issue_access_token("x" * 40, user_id=ALICE, email=ALICE_EMAIL, session_id=uuid.uuid4(), ttl=60)
    expired, _ = issue_access_token(
        gateway.jwt_secret, user_id=ALICE, email=ALICE_EMAIL, session_id=uuid.uuid4(), ttl=60, now=time.time() - 600
    )
    cases = [
        ({}, 401, "no_authorization"),
        ({"Authorization": f"Bearer {forged}"}, 403, "bad_jwt"),
        ({"Authorization": f"Bearer {gateway.anon_key}"}, 403, "bad_jwt"),
        ({"Authorization": f"Bearer {expired}"}, 403, "bad_jwt"),
        ({"Authorization": "Bearer not.a.jwt"}, 403, "bad_jwt"),
    ]
    for headers, status, code in cases:
        response = await http.get("/auth/v1/user", headers={"apikey": gateway.anon_key, **headers})
        assert (response.status_code, response.json()["code"]) == (status, code), headers
        assert response.headers["x-supabase-api-version"] == "2024-01-01"


async def test_health(http: httpx.AsyncClient, gateway: Gateway) -> None:
    response = await http.get("/auth/v1/health", headers={"apikey": gateway.anon_key})
    assert response.status_code == 200
    assert response.json()["name"] == "GoTrue"


async def test_update_user_display_name_reaches_the_profile(make_client: ClientFactory, db: Db, unique: str) -> None:
    """Through the trigger of supabase/migrations (so it also works on a real project)."""
    client = await make_client()
    signed_up = await client.auth.sign_up(
        {"email": f"rename-{unique}@example.com", "password": "rename-me", "options": {"data": {"display_name": "Old"}}}
    )
    assert signed_up.user is not None
    user_id = uuid.UUID(signed_up.user.id)

    async def profile_name() -> str:
        return str(await db.pool.fetchval("select display_name from public.profiles where id = $1", user_id))

    await client.auth.update_user({"data": {"display_name": "  New Name  "}})
    assert await profile_name() == "New Name"
    await client.auth.update_user({"data": {"theme": "dark"}})
    assert await profile_name() == "New Name"
    await client.auth.update_user({"data": {"display_name": "   "}})
    assert await profile_name() == "New Name"
    await client.auth.update_user({"data": {"display_name": "x" * 150}})
    assert await profile_name() == "x" * 100


async def test_banned_users_cannot_sign_in(make_client: ClientFactory, db: Db, unique: str) -> None:
    client = await make_client()
    email = f"banned-{unique}@example.com"
    await client.auth.sign_up({"email": email, "password": "banned-pass"})
    await db.pool.execute("update auth.users set banned_until = now() + interval '1 hour' where email = $1", email)
    with pytest.raises(AuthApiError) as caught:
        await (await make_client()).auth.sign_in_with_password({"email": email, "password": "banned-pass"})
    assert (caught.value.status, caught.value.code, caught.value.message) == (400, "user_banned", "User is banned")


async def test_a_user_seeded_without_token_columns_fails_as_gotrue_fails(
    http: httpx.AsyncClient, gateway: Gateway, db: Db, unique: str
) -> None:
    """auth.users has no defaults for GoTrue's token columns: a seed that leaves them NULL breaks sign-in."""
    email = f"seeded-{unique}@example.com"
    await db.pool.execute(
        "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,"
        " raw_app_meta_data, raw_user_meta_data, created_at, updated_at)"
        " values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', $1,"
        " extensions.crypt('seeded-pass', extensions.gen_salt('bf', 4)), now(), '{}', '{}', now(), now())",
        email,
    )
    columns = await db.pool.fetchrow(
        "select confirmation_token, recovery_token, raw_user_meta_data from auth.users where email = $1", email
    )
    assert tuple(columns) == (None, None, "{}")
    response = await http.post(
        "/auth/v1/token",
        params={"grant_type": "password"},
        json={"email": email, "password": "seeded-pass"},
        headers={"apikey": gateway.anon_key},
    )
    assert (response.status_code, response.json()) == (
        500,
        {"code": "unexpected_failure", "message": "Database error querying schema"},
    )
    await db.pool.execute(
        "update auth.users set confirmation_token = '', recovery_token = '', email_change_token_new = '',"
        " email_change = '' where email = $1",
        email,
    )
    fixed = await http.post(
        "/auth/v1/token",
        params={"grant_type": "password"},
        json={"email": email, "password": "seeded-pass"},
        headers={"apikey": gateway.anon_key},
    )
    assert fixed.status_code == 200
