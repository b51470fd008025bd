"""PostgREST 12's operators, JSON paths and casts through the official client.

Arrays, jsonb and ranges with ``cs``/``cd``/``ov``; the range operators ``sl sr nxl nxr adj``; ``like``,
``ilike`` and ``eq`` with ``(any)``/``(all)``; full-text search with and without a configuration; JSON
paths and casts in ``select``, filters and ``order``.
"""

from __future__ import annotations

import httpx
import pytest
from postgrest.exceptions import APIError

from tests.integration.gateway.conftest import ALICE_EMAIL, ClientFactory, Gateway

pytestmark = pytest.mark.integration


async def _names(client_query: object) -> list[str]:
    response = await client_query.execute()  # type: ignore[attr-defined]
    return [row["name"] for row in response.data]


async def test_contains_contained_and_overlap_on_arrays_jsonb_and_ranges(
    make_client: ClientFactory, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)

    def countries() -> object:
        return client.table("gwx_countries").select("name").lte("id", 4).order("id")

    assert await _names(countries().contains("tags", ["africa"])) == ["Algeria", "Togo"]  # type: ignore[attr-defined]
    assert await _names(countries().contained_by("tags", ["africa", "coast", "x"])) == ["Algeria", "Togo"]  # type: ignore[attr-defined]
    assert await _names(countries().overlaps("tags", ["balkans", "america"])) == ["Albania", "United States"]  # type: ignore[attr-defined]
    assert await _names(countries().contains("info", {"stats": {"rank": 1}})) == ["Algeria"]  # type: ignore[attr-defined]
    assert await _names(countries().contained_by("info", {"capital": "Lome", "x": 1})) == ["Togo", "United States"]  # type: ignore[attr-defined]
    assert await _names(countries().contains("season", "[2000-01-01 10:30, 2000-01-01 11:00)")) == ["Albania"]  # type: ignore[attr-defined]
    assert await _names(countries().overlaps("season", "[2000-01-02 09:30, 2000-01-03 09:30)")) == [  # type: ignore[attr-defined]
        "Algeria",
        "Togo",
    ]
    assert await _names(countries().filter("span", "cs", "[6,7]")) == ["Algeria"]  # type: ignore[attr-defined]


async def test_range_position_operators(make_client: ClientFactory, surface_schema: None) -> None:
    client = await make_client(ALICE_EMAIL)

    def countries() -> object:
        return client.table("gwx_countries").select("name").lte("id", 3).order("id")

    assert await _names(countries().range_lt("span", [10, 15])) == ["Albania", "Algeria"]  # type: ignore[attr-defined]
    assert await _names(countries().range_gt("span", [1, 8])) == ["Togo"]  # type: ignore[attr-defined]
    assert await _names(countries().range_lte("span", [1, 9])) == ["Albania", "Algeria"]  # type: ignore[attr-defined]
    assert await _names(countries().range_gte("span", [4, 6])) == ["Algeria", "Togo"]  # type: ignore[attr-defined]
    # The client writes ranges exclusive at both ends: (8,20) is [9,20), adjacent to [5,9) and [20,30).
    assert await _names(countries().range_adjacent("span", [8, 20])) == ["Algeria", "Togo"]  # type: ignore[attr-defined]


async def test_quantified_pattern_and_comparison_operators(make_client: ClientFactory, surface_schema: None) -> None:
    client = await make_client(ALICE_EMAIL)

    def countries() -> object:
        return client.table("gwx_countries").select("name").lte("id", 4).order("id")

    assert await _names(countries().like_any_of("name", "Al*,*go")) == ["Albania", "Algeria", "Togo"]  # type: ignore[attr-defined]
    assert await _names(countries().like_all_of("name", "A*,*a")) == ["Albania", "Algeria"]  # type: ignore[attr-defined]
    assert await _names(countries().ilike_any_of("name", "%STATES,tog*")) == ["Togo", "United States"]  # type: ignore[attr-defined]
    assert await _names(countries().ilike_all_of("name", "a*,*ia")) == ["Albania", "Algeria"]  # type: ignore[attr-defined]
    assert await _names(countries().filter("phonecode", "gt(any)", "{300,1000}")) == ["Albania"]  # type: ignore[attr-defined]
    assert await _names(countries().filter("iso", "eq(any)", "{DZ,TG}")) == ["Algeria", "Togo"]  # type: ignore[attr-defined]
    assert await _names(countries().filter("phonecode", "lt(all)", "{300,250}")) == ["Algeria", "Togo", "United States"]  # type: ignore[attr-defined]
    assert await _names(countries().filter("name", "imatch", "^al")) == ["Albania", "Algeria"]  # type: ignore[attr-defined]
    assert await _names(countries().not_.filter("motto", "isdistinct", "Work, liberty, homeland")) == ["Togo"]  # type: ignore[attr-defined]


async def test_full_text_search_with_and_without_a_configuration(
    make_client: ClientFactory, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)

    def countries() -> object:
        return client.table("gwx_countries").select("name").lte("id", 4).order("id")

    assert await _names(countries().fts("motto", "people")) == ["Albania", "Algeria"]  # type: ignore[attr-defined]
    assert await _names(countries().text_search("motto", "peoples", {"config": "english"})) == ["Albania", "Algeria"]  # type: ignore[attr-defined]
    assert await _names(countries().text_search("motto", "liberty homeland", {"type": "plain"})) == ["Togo"]  # type: ignore[attr-defined]
    assert await _names(countries().text_search("motto", "one people", {"type": "phrase", "config": "english"})) == [  # type: ignore[attr-defined]
        "Albania"
    ]
    assert await _names(countries().text_search("motto", "people -albanians", {"type": "web_search"})) == ["Algeria"]  # type: ignore[attr-defined]


async def test_json_paths_and_casts_in_select_filters_and_order(
    make_client: ClientFactory, http: httpx.AsyncClient, gateway: Gateway, surface_schema: None
) -> None:
    client = await make_client(ALICE_EMAIL)
    response = await (
        client.table("gwx_countries")
        .select("name,capital:info->>capital,info->stats->rank,first:info->list->0,area::text,phonecode::text")
        .lte("id", 3)
        .not_.is_("info->stats", "null")
        .order("info->stats->rank", desc=True)
        .execute()
    )
    assert response.data == [
        {"name": "Albania", "capital": "Tirana", "rank": 3, "first": 1, "area": "28748.00", "phonecode": "355"},
        {"name": "Algeria", "capital": "Algiers", "rank": 1, "first": 3, "area": "2381741.00", "phonecode": "213"},
    ]
    by_path = await client.table("gwx_countries").select("name").eq("info->>capital", "Lome").execute()
    assert by_path.data == [{"name": "Togo"}]
    by_json = await client.table("gwx_countries").select("name").eq("info->stats->rank", 1).execute()
    assert by_json.data == [{"name": "Algeria"}]
    unknown = await http.get(
        "/rest/v1/gwx_countries", params={"select": "name::no_such_type"}, headers=gateway.headers(ALICE_EMAIL)
    )
    assert (unknown.status_code, unknown.json()["code"]) == (400, "42704")
    with pytest.raises(APIError) as caught:
        await client.table("gwx_countries").select("name").filter("name", "sideways", "x").execute()
    assert caught.value.code == "PGRST100"
