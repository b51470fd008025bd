"""Which address each legacy user gets (chat_migrate/emails.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_migrate.emails import assign, check_domain, load_email_file
from chat_migrate.errors import BadInput
from chat_migrate.model import LegacyUser


def users(*names: str | None) -> dict[int, LegacyUser]:
    return {n: LegacyUser(n, name, None) for n, name in enumerate(names, start=1)}


def test_addresses_from_the_domain_are_lower_case() -> None:
    plan = assign(users("Alice", "bob.smith"), domain="legacy.example", mapping={})
    assert plan.emails == {1: "alice@legacy.example", 2: "bob.smith@legacy.example"} and plan.blockers == []


def test_usernames_colliding_when_lower_cased_block_both_until_mapped() -> None:
    plan = assign(users("Dave", "dave", "eve"), domain="x.org", mapping={})
    assert [b.user for b in plan.blockers] == [1, 2] and plan.emails == {3: "eve@x.org"}
    assert "would share dave@x.org" in plan.blockers[0].reason
    plan = assign(users("Dave", "dave"), domain="x.org", mapping={"dave": "dave2@x.org"})
    assert plan.emails == {1: "dave@x.org", 2: "dave2@x.org"} and plan.blockers == []


def test_names_that_cannot_be_an_address_need_one_from_the_file() -> None:
    plan = assign(users("John Smith", "ünï", ".dot", None, ""), domain="x.org", mapping={})
    assert [b.user for b in plan.blockers] == [1, 2, 3, 4, 5]
    plan = assign(users("John Smith"), domain=None, mapping={"user:1": "john@x.org"})
    assert plan.emails == {1: "john@x.org"} and plan.from_file == 1


def test_without_a_domain_every_unmapped_user_is_a_blocker() -> None:
    plan = assign(users("a", "b"), domain=None, mapping={"a": "a@x.org"})
    assert plan.emails == {1: "a@x.org"} and [b.user for b in plan.blockers] == [2]


def test_the_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "emails.csv"
    path.write_text("username,email\nalice,Alice@Example.COM\n\nuser:7,seven@x.org\n")
    assert load_email_file(path) == {"alice": "alice@example.com", "user:7": "seven@x.org"}
    path.write_text("alice,a@x.org,extra\n")
    with pytest.raises(BadInput, match="expected two columns"):
        load_email_file(path)
    path.write_text("alice,a@x.org\nalice,b@x.org\n")
    with pytest.raises(BadInput, match="given two addresses"):
        load_email_file(path)
    with pytest.raises(BadInput, match="cannot read"):
        load_email_file(tmp_path / "missing.csv")


def test_domains_are_checked() -> None:
    assert check_domain("@Example.com ") == "example.com"
    with pytest.raises(BadInput):
        check_domain("not a domain")
