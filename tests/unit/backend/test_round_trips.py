"""RoundTrips: the key of a request, and counting the requests an httpx client sends."""

from __future__ import annotations

import httpx

from desktop_chat.backend.round_trips import RoundTripCounts, RoundTrips, call_key


def test_a_request_is_keyed_by_service_and_resource_without_ids() -> None:
    assert call_key("POST", "/rest/v1/rpc/chat_list") == "rpc chat_list"
    assert call_key("GET", "/rest/v1/chat_messages") == "rest GET chat_messages"
    assert call_key("POST", "/auth/v1/token") == "auth POST token"
    assert call_key("GET", "/auth/v1/health") == "auth GET health"
    assert call_key("GET", "/elsewhere") == "other GET"


def test_since_keeps_only_what_moved() -> None:
    before = RoundTripCounts(3, {"rpc chat_list": 1, "auth POST token": 2}, 3)
    after = RoundTripCounts(5, {"rpc chat_list": 2, "auth POST token": 2, "rest GET profiles": 1}, 4)
    assert after.since(before) == RoundTripCounts(2, {"rpc chat_list": 1, "rest GET profiles": 1}, 1)


async def test_every_request_of_the_client_is_counted() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[])

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://supabase.test") as client:
        trips = RoundTrips()
        trips.attach(client)
        await client.post("/rest/v1/rpc/chat_list?x=1", json={})
        await client.get("/rest/v1/chat_messages", params={"session_id": "eq.1"})
        await client.post("/rest/v1/rpc/chat_list", json={})
    assert trips.total == 3
    assert trips.snapshot().answered == 3
    assert trips.snapshot().by_call == {"rpc chat_list": 2, "rest GET chat_messages": 1}
