"""``/rest/v1/rpc`` through the official client: POST and GET calls, set results, the caller's role."""

from __future__ import annotations

import httpx
import pytest
from postgrest.exceptions import APIError

from tests.integration.db.conftest import ALICE, Db
from tests.integration.gateway.conftest import ALICE_EMAIL, ClientFactory, Gateway

pytestmark = pytest.mark.integration


async def test_post_and_get_calls_with_named_and_default_arguments(
    make_client: ClientFactory, test_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    assert (await client.rpc("gw_add", {"a": 2, "b": 5}).execute()).data == 7
    assert (await client.rpc("gw_add", {"a": 2}).execute()).data == 3
    assert (await client.rpc("gw_add", {"a": 40, "b": 2}, get=True).execute()).data == 42


async def test_array_arguments_by_post_and_by_get(make_client: ClientFactory, test_schema: None) -> None:
    client = await make_client(ALICE_EMAIL)
    assert (await client.rpc("gw_count", {"p_ids": [1, 2, 3]}).execute()).data == 3
    assert (await client.rpc("gw_count", {"p_ids": [4, 5]}, get=True).execute()).data == 2


async def test_a_void_function_answers_204(
    make_client: ClientFactory, test_schema: None, http: httpx.AsyncClient, gateway: Gateway
) -> None:
    client = await make_client(ALICE_EMAIL)
    assert (await client.rpc("gw_noop", {"p": "x"}).execute()).data == []
    raw = await http.post("/rest/v1/rpc/gw_noop", json={"p": "x"}, headers=gateway.headers(ALICE_EMAIL))
    assert (raw.status_code, raw.content) == (204, b"")


async def test_set_results_take_select_filters_order_paging_and_count(
    make_client: ClientFactory, test_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    by_post = await (
        client.rpc("gw_series", {"n": 6}, count="exact")
        .select("label")
        .gt("i", 2)
        .order("i", desc=True)
        .limit(2)
        .execute()
    )
    assert (by_post.data, by_post.count) == ([{"label": "n6"}, {"label": "n5"}], 4)
    by_get = await client.rpc("gw_series", {"n": 4}, get=True).in_("i", [1, 3]).execute()
    assert by_get.data == [{"i": 1, "label": "n1"}, {"i": 3, "label": "n3"}]
    assert (await client.rpc("gw_ints", {"n": 3}).execute()).data == [1, 2, 3]


async def test_set_results_are_capped_at_max_rows(make_client: ClientFactory, test_schema: None) -> None:
    """supabase/config.toml's max_rows = 1000, as PostgREST's db-max-rows."""
    client = await make_client(ALICE_EMAIL)
    response = await client.rpc("gw_ints", {"n": 1500}).execute()
    assert len(response.data) == 1000
    assert response.data[-1] == 1000


async def test_functions_run_as_the_caller(make_client: ClientFactory, test_schema: None) -> None:
    alice = await make_client(ALICE_EMAIL)
    assert (await alice.rpc("gw_whoami").execute()).data == {
        "uid": str(ALICE),
        "role": "authenticated",
        "claim_role": "authenticated",
    }
    anonymous = await make_client()
    assert (await anonymous.rpc("gw_whoami").execute()).data == {"uid": None, "role": "anon", "claim_role": "anon"}


async def test_a_volatile_function_cannot_write_through_get(
    make_client: ClientFactory, test_schema: None, http: httpx.AsyncClient, gateway: Gateway, db: Db, unique: str
) -> None:
    """GET calls run read-only, as in PostgREST: a function that writes fails there (405) and works by POST."""
    refused = await http.get(
        "/rest/v1/rpc/gw_make_thing", params={"p_name": f"{unique}-get"}, headers=gateway.headers(ALICE_EMAIL)
    )
    assert (refused.status_code, refused.json()["code"]) == (405, "25006")
    client = await make_client(ALICE_EMAIL)
    made = await client.rpc("gw_make_thing", {"p_name": f"{unique}-post"}).execute()
    assert made.data["name"] == f"{unique}-post"
    names = await db.pool.fetch("select name from public.gw_things where name like $1", f"{unique}-%")
    assert [row["name"] for row in names] == [f"{unique}-post"]


async def test_unknown_functions_and_arguments_are_pgrst202(make_client: ClientFactory, test_schema: None) -> None:
    client = await make_client(ALICE_EMAIL)
    for name, args in (("gw_missing", {}), ("gw_add", {"zzz": 1}), ("gw_add", {"b": 1})):
        with pytest.raises(APIError) as caught:
            await client.rpc(name, args).execute()
        assert caught.value.code == "PGRST202", (name, args)


async def test_a_function_created_after_start_is_callable_at_once(
    make_client: ClientFactory, db: Db, unique: str
) -> None:
    name = f"gw_late_{unique}"
    await db.pool.execute(f"create function public.{name}(x int) returns int language sql as $$ select x * 2 $$")
    try:
        client = await make_client(ALICE_EMAIL)
        assert (await client.rpc(name, {"x": 21}).execute()).data == 42
        # Replaced with other parameters, as a migration might: the cache follows.
        await db.pool.execute(f"drop function public.{name}(int)")
        await db.pool.execute(f"create function public.{name}(y int) returns int language sql as $$ select y * 3 $$")
        assert (await client.rpc(name, {"y": 3}, get=True).execute()).data == 9
        assert (await client.rpc(name, {"y": 2}).execute()).data == 6
    finally:
        await db.pool.execute(f"drop function if exists public.{name}(int)")
