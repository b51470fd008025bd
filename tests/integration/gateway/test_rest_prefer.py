"""Response formats and ``Prefer`` through the official client (and raw HTTP for what it does not send).

``Accept: text/csv`` and ``nulls=stripped``; ``missing=default`` on a bulk upsert; ``tx=rollback``;
``max-affected`` with ``handling=strict``; ``Content-Range`` and ``Preference-Applied`` as PostgREST
writes them; an upsert that only updates answers 200; an ``or=`` nested 400 levels deep is answered.
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

_ids = itertools.count(2_000_000 + uuid.uuid4().int % 1_000_000 * 10)


@pytest.fixture
async def cities(db: Db, surface_schema: None) -> AsyncIterator[list[int]]:
    """Ids for city rows a test writes (in Togo); removed afterwards."""
    ids = [next(_ids) for _ in range(4)]
    yield ids
    await db.pool.execute("delete from public.gwx_cities where id = any($1::int8[])", ids)


async def test_csv_output(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await (
        client.table("gwx_countries").select("name,iso,area,tags").in_("iso", ["AL", "US"]).order("id").csv().execute()
    )
    assert response.data == 'name,iso,area,tags\nAlbania,AL,28748.00,"{europe,balkans}"\n"United States",US,,{america}'
    raw = await http.get(
        "/rest/v1/gwx_countries",
        params={"select": "iso", "iso": "eq.none"},
        headers={**gateway.headers(ALICE_EMAIL), "Accept": "text/csv"},
    )
    assert (raw.status_code, raw.headers["content-type"], raw.text) == (200, "text/csv; charset=utf-8", "\n")


async def test_stripped_nulls(make_client: ClientFactory, surface_schema: None) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await client.table("gwx_countries").select("iso,area").eq("iso", "US").strip_nulls().execute()
    assert response.data == [{"iso": "US"}]


async def test_bulk_upsert_with_missing_default(make_client: ClientFactory, db: Db, cities: list[int]) -> None:
    """Absent keys take the column default, on insert and on the update of a conflicting row alike.

    The client lists the union of the rows' keys in ``columns``: those are the columns written (and
    merged); ``note`` is in no row, so the existing row keeps its own.
    """
    client = await make_client(ALICE_EMAIL)
    first, second, third, _ = cities
    await (
        client.table("gwx_cities")
        .insert({"id": first, "country_id": 3, "name": "Old", "population": 5, "note": "x"})
        .execute()
    )
    rows = [
        {"id": first, "country_id": 3, "name": "Updated"},
        {"id": second, "country_id": 3, "name": "New", "population": 7},
        {"id": third, "country_id": 3, "name": "Defaulted"},
    ]
    response = await client.table("gwx_cities").upsert(rows, default_to_null=False).execute()
    assert sorted((r["id"], r["name"], r["population"], r["note"]) for r in response.data) == [
        (first, "Updated", 1000, "x"),
        (second, "New", 7, "none"),
        (third, "Defaulted", 1000, "none"),
    ]
    # Without missing=default a listed column absent from a row is null; unlisted columns stay as they were.
    nulled = (
        await client.table("gwx_cities")
        .upsert(
            [{"id": first, "country_id": 3, "name": "Nulls"}, {"id": second, "country_id": 3, "name": "N", "note": "y"}]
        )
        .execute()
    )
    assert sorted((r["id"], r["population"], r["note"]) for r in nulled.data) == [(first, 1000, None), (second, 7, "y")]


async def test_upsert_status_and_headers(
    http: httpx.AsyncClient, gateway: Gateway, cities: list[int], surface_schema: None
) -> None:
    headers = {**gateway.headers(ALICE_EMAIL), "Prefer": "return=minimal,resolution=merge-duplicates,count=exact"}
    row = {"id": cities[0], "country_id": 3, "name": "Kpalime"}
    created = await http.post("/rest/v1/gwx_cities", json=row, headers=headers)
    assert (created.status_code, created.headers["content-range"]) == (201, "*/1")
    assert created.headers["preference-applied"] == "resolution=merge-duplicates, return=minimal, count=exact"
    updated = await http.post("/rest/v1/gwx_cities", json={**row, "name": "Kpalimé"}, headers=headers)
    assert (updated.status_code, updated.content) == (200, b"")
    patched = await http.patch(
        "/rest/v1/gwx_cities",
        params={"id": f"eq.{cities[0]}"},
        json={"population": 1},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "return=representation"},
    )
    assert (patched.status_code, patched.headers["content-range"]) == (200, "0-0/*")


async def test_tx_rollback_answers_but_keeps_nothing(
    http: httpx.AsyncClient, gateway: Gateway, db: Db, cities: list[int]
) -> None:
    response = await http.post(
        "/rest/v1/gwx_cities",
        json={"id": cities[0], "country_id": 3, "name": "Ghost"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "return=representation,tx=rollback"},
    )
    assert response.status_code == 201
    assert [row["name"] for row in response.json()] == ["Ghost"]
    assert response.headers["preference-applied"] == "return=representation, tx=rollback"
    assert await db.pool.fetchval("select count(*) from public.gwx_cities where id = $1", cities[0]) == 0


async def test_max_affected_with_strict_handling(make_client: ClientFactory, db: Db, cities: list[int]) -> None:
    client = await make_client(ALICE_EMAIL)
    await (
        client.table("gwx_cities").insert([{"id": city, "country_id": 3, "name": "Batch"} for city in cities]).execute()
    )
    with pytest.raises(APIError) as caught:
        await client.table("gwx_cities").update({"note": "x"}).eq("name", "Batch").max_affected(3).execute()
    assert (caught.value.code, caught.value.message, caught.value.details) == (
        "PGRST124",
        "Query result exceeds max-affected preference constraint",
        "The query affects 4 rows",
    )
    assert await db.pool.fetchval("select count(*) from public.gwx_cities where note = 'x'") == 0
    deleted = await client.table("gwx_cities").delete().eq("id", cities[0]).max_affected(1).execute()
    assert [row["id"] for row in deleted.data] == [cities[0]]


async def test_unknown_preferences_are_ignored_unless_handling_is_strict(
    http: httpx.AsyncClient, gateway: Gateway, surface_schema: None
) -> None:
    lenient = await http.get(
        "/rest/v1/gwx_countries",
        params={"select": "iso", "iso": "eq.AL"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "count=exact, bogus=1"},
    )
    assert (lenient.status_code, lenient.headers["preference-applied"]) == (200, "count=exact")
    strict = await http.get(
        "/rest/v1/gwx_countries",
        params={"select": "iso"},
        headers={**gateway.headers(ALICE_EMAIL), "Prefer": "handling=strict, bogus=1"},
    )
    assert strict.status_code == 400
    assert strict.json() == {
        "code": "PGRST122",
        "details": "Invalid preferences: bogus=1",
        "hint": None,
        "message": "Invalid preferences given with handling=strict",
    }


async def test_a_logic_tree_nested_400_deep_is_answered(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, surface_schema: None
) -> None:
    """Issue 10: this was a RecursionError and a 500; PostgREST evaluates it."""
    client = await make_client(ALICE_EMAIL)
    depth = 400
    tree = "or(" * depth + "iso.eq.DZ,iso.eq.TG" + ")" * depth
    response = await client.table("gwx_countries").select("iso").or_(tree).order("id").execute()
    assert response.data == [{"iso": "DZ"}, {"iso": "TG"}]
    negated = await http.get(
        "/rest/v1/gwx_countries",
        params={"select": "iso", "id": "lte.4", "not.and": "(" + "and(" * depth + "iso.neq.AL" + ")" * depth + ")"},
        headers=gateway.headers(ALICE_EMAIL),
    )
    assert (negated.status_code, negated.json()) == (200, [{"iso": "AL"}])
