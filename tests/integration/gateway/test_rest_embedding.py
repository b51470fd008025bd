"""Resource embedding through the official client, answered as PostgREST 12 answers it.

Many-to-one, one-to-many and many-to-many through foreign keys, aliases, ``!inner``, hints that choose
between several relationships (and PGRST201 when none is given), filters, order and limits on the
embedded resource, ``order=embedded(column)`` for a to-one embed, two levels of nesting, spreads, and row
level security applied to the embedded table too.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from postgrest.exceptions import APIError

from tests.integration.db.conftest import ALICE, Db
from tests.integration.gateway.conftest import ALICE_EMAIL, ClientFactory, Gateway

pytestmark = pytest.mark.integration

CITIES = "gwx_cities!gwx_cities_country_id_fkey"


async def test_many_to_one_with_an_alias_and_an_order_on_the_embedded_column(
    make_client: ClientFactory, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await (
        client.table("gwx_cities")
        .select("name,country:gwx_countries!country_id(iso,name)")
        .lte("id", 5)
        .order("country(iso)", desc=True)
        .order("name")
        .execute()
    )
    assert response.data == [
        {"name": "Lome", "country": {"iso": "TG", "name": "Togo"}},
        {"name": "Algiers", "country": {"iso": "DZ", "name": "Algeria"}},
        {"name": "Oran", "country": {"iso": "DZ", "name": "Algeria"}},
        {"name": "Durres", "country": {"iso": "AL", "name": "Albania"}},
        {"name": "Tirana", "country": {"iso": "AL", "name": "Albania"}},
    ]


async def test_one_to_many_with_filters_order_and_limit_on_the_embedded_rows(
    make_client: ClientFactory, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await (
        client.table("gwx_countries")
        .select(f"iso,{CITIES}(name,population)")
        .lte("id", 4)
        .gt("gwx_cities.population", 100000)
        .order("population", desc=True, foreign_table="gwx_cities")
        .limit(1, foreign_table="gwx_cities")
        .order("id")
        .execute()
    )
    assert response.data == [
        {"iso": "AL", "gwx_cities": [{"name": "Tirana", "population": 800000}]},
        {"iso": "DZ", "gwx_cities": [{"name": "Algiers", "population": 3000000}]},
        {"iso": "TG", "gwx_cities": [{"name": "Lome", "population": 900000}]},
        {"iso": "US", "gwx_cities": []},
    ]


async def test_inner_embeds_filter_the_parents_and_their_count(
    make_client: ClientFactory, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await (
        client.table("gwx_countries")
        .select("name,gwx_cities!gwx_cities_country_id_fkey!inner(name)", count="exact")
        .lte("id", 4)
        .or_("name.eq.Oran,name.eq.Lome", reference_table="gwx_cities")
        .order("id")
        .execute()
    )
    assert response.count == 2
    assert response.data == [
        {"name": "Algeria", "gwx_cities": [{"name": "Oran"}]},
        {"name": "Togo", "gwx_cities": [{"name": "Lome"}]},
    ]


async def test_embeds_nest_one_level_deeper_and_many_to_many_goes_through_the_junction(
    make_client: ClientFactory, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await (
        client.table("gwx_cities")
        .select("name,gwx_countries!country_id(iso,gwx_languages(name))")
        .eq("name", "Oran")
        .order("name", foreign_table="gwx_countries.gwx_languages")
        .execute()
    )
    assert response.data == [
        {"name": "Oran", "gwx_countries": {"iso": "DZ", "gwx_languages": [{"name": "Arabic"}, {"name": "French"}]}}
    ]
    capital = await (
        client.table("gwx_countries").select("iso,capital:gwx_cities!capital_id(name)").eq("iso", "DZ").execute()
    )
    assert capital.data == [{"iso": "DZ", "capital": {"name": "Algiers"}}]


async def test_null_embed_filters_empty_embeds_and_spreads(make_client: ClientFactory, surface_schema: None) -> None:
    client = await make_client(ALICE_EMAIL)
    without = await (
        client.table("gwx_countries").select(f"iso,{CITIES}()").lte("id", 4).is_("gwx_cities", "null").execute()
    )
    assert without.data == [{"iso": "US"}]
    spread = await (
        client.table("gwx_cities").select("name,...gwx_countries!country_id(country:name)").eq("id", 5).execute()
    )
    assert spread.data == [{"name": "Lome", "country": "Togo"}]


async def test_ambiguous_and_unknown_embeds_get_postgrest_errors(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    with pytest.raises(APIError) as ambiguous:
        await client.table("gwx_countries").select("iso,gwx_cities(name)").execute()
    assert ambiguous.value.code == "PGRST201"
    assert ambiguous.value.message == (
        "Could not embed because more than one relationship was found for 'gwx_countries' and 'gwx_cities'"
    )
    assert ambiguous.value.hint == (
        "Try changing 'gwx_cities' to one of the following: 'gwx_cities!gwx_countries_capital_fk', "
        "'gwx_cities!gwx_cities_country_id_fkey'. Find the desired relationship in the 'details' key."
    )
    assert ambiguous.value.details == [
        {
            "cardinality": "many-to-one",
            "embedding": "gwx_countries with gwx_cities",
            "relationship": "gwx_countries_capital_fk using gwx_countries(capital_id) and gwx_cities(id)",
        },
        {
            "cardinality": "one-to-many",
            "embedding": "gwx_countries with gwx_cities",
            "relationship": "gwx_cities_country_id_fkey using gwx_countries(id) and gwx_cities(country_id)",
        },
    ]
    raw = await http.get(
        "/rest/v1/gwx_countries", params={"select": "iso,gwx_citie(*)"}, headers=gateway.headers(ALICE_EMAIL)
    )
    assert raw.status_code == 400
    assert raw.json() == {
        "code": "PGRST200",
        "details": "Searched for a foreign key relationship between 'gwx_countries' and 'gwx_citie' in the "
        "schema 'public', but no matches were found.",
        "hint": "Perhaps you meant 'gwx_cities' instead of 'gwx_citie'.",
        "message": "Could not find a relationship between 'gwx_countries' and 'gwx_citie' in the schema cache",
    }
    for params, code, status in (
        ({"select": "iso", "gwx_cities.name": "eq.x"}, "PGRST108", 400),
        ({"select": f"iso,{CITIES}(name)", "order": "gwx_cities(name)"}, "PGRST118", 400),
    ):
        response = await http.get("/rest/v1/gwx_countries", params=params, headers=gateway.headers(ALICE_EMAIL))
        assert (response.status_code, response.json()["code"]) == (status, code)


async def test_writes_return_their_rows_with_embeds(make_client: ClientFactory, db: Db, surface_schema: None) -> None:
    client = await make_client(ALICE_EMAIL)
    city = 100_000 + uuid.uuid4().int % 1_000_000
    try:
        inserted = await (
            client.table("gwx_cities")
            .insert({"id": city, "country_id": 3, "name": "Kara"})
            .select("name,gwx_countries!country_id(iso)")
            .execute()
        )
        assert inserted.data == [{"name": "Kara", "gwx_countries": {"iso": "TG"}}]
    finally:
        await db.pool.execute("delete from public.gwx_cities where id = $1", city)


async def test_row_level_security_applies_to_the_embedded_table(
    make_client: ClientFactory, db: Db, gateway: Gateway
) -> None:
    """A sender who left every chat Alice is in keeps their messages there, but not their profile for her."""
    dave = await db.new_user("Dave")
    chat = await db.new_chat(ALICE, dave, title="embedding and RLS")
    await db.post(dave, chat, "from dave")
    await db.post(ALICE, chat, "from alice")
    client = await make_client(ALICE_EMAIL)
    query = client.table("chat_messages").select("content,profiles(display_name)").eq("session_id", str(chat))
    before = await query.order("seq").execute()
    assert before.data == [
        {"content": "from dave", "profiles": {"display_name": "Dave"}},
        {"content": "from alice", "profiles": {"display_name": "Alice"}},
    ]
    async with db.as_user(dave) as conn:
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, dave)
    after = await query.order("seq").execute()
    assert after.data == [
        {"content": "from dave", "profiles": None},
        {"content": "from alice", "profiles": {"display_name": "Alice"}},
    ]
    # Members of a chat she is in, and only those: the embedded memberships are filtered by their policy.
    members = await client.table("chat_sessions").select("title,chat_members(user_id)").eq("id", str(chat)).execute()
    assert members.data == [{"title": "embedding and RLS", "chat_members": [{"user_id": str(ALICE)}]}]
