"""Issue 17's two wire bugs, through the official client: type modifiers and ``"char"`` catalog columns.

1. Values compared with or written into ``char(n)``, ``varchar(n)``, ``numeric(p,s)``, ``timestamp(p)`` and
   arrays of them keep what their type says: a filter compares the value as written (``iso=eq.DZ`` finds
   DZ, ``eq.DZA`` finds nothing rather than DZ cut short), a write is typed with the modifier (a value that
   does not fit is 22001, a numeric is rounded to its scale as PostgreSQL rounds it).
2. Functions returning a table's row type are composite (select and filter their rows), and a ``stable``
   function called by POST runs in a read-only transaction, as PostgREST runs it.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from postgrest.exceptions import APIError

from tests.integration.db.conftest import Db
from tests.integration.gateway.conftest import ALICE_EMAIL, ClientFactory, Gateway

pytestmark = pytest.mark.integration

_ids = itertools.count(1000 + uuid.uuid4().int % 1_000_000 * 10)


@pytest.fixture
async def fresh_country(db: Db, surface_schema: None) -> AsyncIterator[int]:
    """An id for a country row the test writes; the row is removed afterwards."""
    country = next(_ids)
    yield country
    await db.pool.execute("delete from public.gwx_countries where id = $1", country)


async def test_char_n_filters_compare_the_whole_value(make_client: ClientFactory, surface_schema: None) -> None:
    client = await make_client(ALICE_EMAIL)
    table = client.table("gwx_countries")
    assert (await table.select("name").eq("iso", "DZ").execute()).data == [{"name": "Algeria"}]
    listed = await table.select("iso").in_("iso", ["AL", "DZ"]).order("id").execute()
    assert listed.data == [{"iso": "AL"}, {"iso": "DZ"}]
    after = await table.select("iso").gt("iso", "TG").execute()
    assert after.data == [{"iso": "US"}]
    # Too long for char(2): compared as written, as PostgREST's literal is, not cut to "DZ".
    assert (await table.select("iso").eq("iso", "DZA").execute()).data == []
    assert (await table.select("name").eq("iso3", "TGO").execute()).data == [{"name": "Togo"}]
    codes = await table.select("name").cs("codes", ["TG"]).execute()
    assert codes.data == [{"name": "Togo"}]


async def test_varchar_numeric_and_timestamp_filters_are_not_cut_or_rounded(
    make_client: ClientFactory, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    table = client.table("gwx_countries")
    assert (await table.select("name").eq("area", "56785.5").execute()).data == [{"name": "Togo"}]
    # numeric(10,2): 56785.504 would round to 56785.50 if the operand were cast with the modifier.
    assert (await table.select("name").eq("area", "56785.504").execute()).data == []
    assert (await table.select("name").eq("founded", "1912-11-28 10:00:00").execute()).data == [{"name": "Albania"}]
    # timestamp(0): a fraction of a second would round away under the column's modifier.
    assert (await table.select("name").eq("founded", "1912-11-28 10:00:00.4").execute()).data == []
    assert (await table.select("name").eq("name", "Algeria").execute()).data == [{"name": "Algeria"}]
    # varchar(20): a longer value must not be cut to 20 characters and then match.
    assert (await table.select("name").eq("name", "United States of Amer").execute()).data == []
    names = await table.select("name").ov("names", ["tgo", "xxxxxxx"]).execute()
    assert names.data == [{"name": "Togo"}]


async def test_writes_are_typed_with_the_modifiers(make_client: ClientFactory, db: Db, fresh_country: int) -> None:
    client = await make_client(ALICE_EMAIL)
    row = {
        "id": fresh_country,
        "iso": "ZZ",
        "iso3": "ZZZ",
        "name": "Zedland",
        "area": "12.345",
        "founded": "2001-02-03 04:05:06.7",
        "codes": ["ZZ", "ZY"],
        "names": ["zed"],
    }
    inserted = await client.table("gwx_countries").insert(row).execute()
    [created] = inserted.data
    assert (created["iso"], created["iso3"], created["codes"], created["names"]) == ("ZZ", "ZZZ", ["ZZ", "ZY"], ["zed"])
    # Rounded to the column's scale and precision, as PostgreSQL rounds a value it stores.
    assert (created["area"], created["founded"]) == (12.35, "2001-02-03T04:05:07")
    for column, too_long, type_ in (
        ("iso", "ZZZ", "character(2)"),
        ("name", "x" * 21, "character varying(20)"),
        ("codes", ["ZZZ"], "character(2)"),
        ("names", ["abcdef"], "character varying(5)"),
    ):
        with pytest.raises(APIError) as caught:
            await client.table("gwx_countries").update({column: too_long}).eq("id", fresh_country).execute()
        assert (caught.value.code, caught.value.message) == ("22001", f"value too long for type {type_}")
    with pytest.raises(APIError) as overflow:
        await client.table("gwx_countries").update({"area": 1e9}).eq("id", fresh_country).execute()
    assert overflow.value.code == "22003"
    stored = await db.pool.fetchrow("select iso, area::text from public.gwx_countries where id = $1", fresh_country)
    assert (stored["iso"], stored["area"]) == ("ZZ", "12.35")


async def test_numbers_in_a_body_keep_every_digit(
    http: httpx.AsyncClient, gateway: Gateway, db: Db, fresh_country: int
) -> None:
    """The body goes to PostgreSQL as sent: no float round trip in the gateway (raw, as a JS client sends it)."""
    body = (
        f'{{"id": {fresh_country}, "iso": "ZQ", "name": "Precise", "info": {{"big": 12345678901234567890.123456789}}}}'
    )
    response = await http.post(
        "/rest/v1/gwx_countries",
        content=body.encode(),
        headers={**gateway.headers(ALICE_EMAIL), "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    text = await db.pool.fetchval("select info ->> 'big' from public.gwx_countries where id = $1", fresh_country)
    assert text == "12345678901234567890.123456789"


async def test_functions_returning_a_tables_rows_take_select_and_filters(
    make_client: ClientFactory, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    posted = await client.rpc("gwx_countries_like", {"p_name": "a"}).select("iso").eq("iso", "DZ").execute()
    assert posted.data == [{"iso": "DZ"}]
    got = await (
        client.rpc("gwx_countries_like", {"p_name": "al"}, get=True)
        .select("name,iso")
        .order("iso", desc=True)
        .execute()
    )
    assert got.data == [{"name": "Algeria", "iso": "DZ"}, {"name": "Albania", "iso": "AL"}]
    single = await client.rpc("gwx_countries_like", {"p_name": "o"}).select("name").eq("iso", "TG").single().execute()
    assert single.data == {"name": "Togo"}
    # Rows of a table's type embed that table's relationships, as in PostgREST.
    embedded = await (
        client.rpc("gwx_countries_like", {"p_name": "Tog"})
        .select("name,gwx_cities!gwx_cities_country_id_fkey(name)")
        .execute()
    )
    assert embedded.data == [{"name": "Togo", "gwx_cities": [{"name": "Lome"}]}]


async def test_stable_functions_called_by_post_run_read_only(make_client: ClientFactory, surface_schema: None) -> None:
    client = await make_client(ALICE_EMAIL)
    assert (await client.rpc("gwx_read_only", {}).execute()).data == "on"
    assert (await client.rpc("gwx_read_only", {}, get=True).execute()).data == "on"
    # A character argument is not cut to one letter either.
    assert (await client.rpc("gwx_char_arg", {"p_iso": "DZ"}).execute()).data == "DZ"


async def test_request_settings_are_exposed_as_postgrest_exposes_them(
    http: httpx.AsyncClient, gateway: Gateway, db: Db, surface_schema: None
) -> None:
    await db.pool.execute(
        "create or replace function public.gwx_request() returns json language sql stable as $$"
        " select json_build_object('method', current_setting('request.method'),"
        " 'path', current_setting('request.path'), 'custom', current_setting('request.headers')::json ->> 'x-custom',"
        " 'role', current_user, 'sub', current_setting('request.jwt.claims')::json ->> 'sub',"
        " 'search_path', current_setting('search_path')) $$;"
        " grant execute on function public.gwx_request() to authenticated"
    )
    response = await http.get("/rest/v1/rpc/gwx_request", headers={**gateway.headers(ALICE_EMAIL), "X-Custom": "hello"})
    assert response.json() == {
        "method": "GET",
        "path": "/rpc/gwx_request",
        "custom": "hello",
        "role": "authenticated",
        "sub": "a11ce000-0000-4000-8000-000000000001",
        "search_path": "public, extensions",
    }
