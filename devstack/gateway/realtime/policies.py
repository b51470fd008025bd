"""Realtime Authorization: who may join a private channel, and broadcast or track presence on it.

As Supabase Realtime decides it, with the project's row level security policies on
``realtime.messages``, evaluated by Postgres under the user's own role and claims:

- **read** (join; receive broadcasts; see presence): probe rows for the topic (one per extension,
  ``broadcast`` and, when presence is on, ``presence``) are inserted by a role that bypasses row level
  security, then selected back as the user with ``role``, ``request.jwt.claims``,
  ``request.jwt.claim.sub``/``.role``, ``request.headers`` and ``realtime.topic`` set. The rows the
  SELECT policy lets through are the extensions the user may read. A join needs at least one.
- **write** (send broadcasts; track presence): an insert of a row for the topic as the user; the
  INSERT policy accepts it or refuses it (42501).

Both run inside a transaction that is rolled back, so nothing is ever stored. Supabase reads once per
join and again when the client sends a new access token; writes are checked at the channel's first
broadcast or presence track (and again after a new token). Never per message.

``_realtime.topic_policies`` does one check in one round trip on the ``authenticator`` pool (a plpgsql
function whose probes run in a subtransaction it rolls back). Differences from Supabase: the probe rows
are written as ``service_role`` rather than an admin login, and the user's role must be one the
``authenticator`` login may become (as for REST), so a token naming ``postgres`` is refused where
Supabase, connected as an administrator, would switch to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import asyncpg
import jwt as pyjwt

from devstack.gateway import jwt

if TYPE_CHECKING:
    from devstack.gateway.realtime.catalog import AnyConnection

log = logging.getLogger(__name__)

BROADCAST = "broadcast"
PRESENCE = "presence"


class NotAuthorized(Exception):
    """A check Realtime treats as "no": the message is what the client is told (after ``Unauthorized:``)."""


class CheckFailed(Exception):
    """A check that could not run; the message is the join error's whole ``reason``."""


@dataclass(frozen=True, slots=True)
class Policies:
    """What one channel may do on its topic; None is "not checked yet" (as Realtime keeps it)."""

    broadcast_read: bool | None = None
    presence_read: bool | None = None
    broadcast_write: bool | None = None
    presence_write: bool | None = None

    @property
    def may_join(self) -> bool:
        return bool(self.broadcast_read or self.presence_read)

    def read_revoked_by(self, newer: Policies) -> bool:
        """Whether ``newer`` takes away a read right this one had."""
        return (self.broadcast_read is True and newer.broadcast_read is False) or (
            self.presence_read is True and newer.presence_read is False
        )

    def merged(self, **checked: bool | None) -> Policies:
        return replace(self, **{name: value for name, value in checked.items() if value is not None})


def read_refusal(topic: str) -> str:
    return f"You do not have permissions to read from this Channel topic: {topic}"


def read_revoked(topic: str) -> str:
    return f"You no longer have permission to read from this Channel topic: {topic}"


def token_refusal(error: jwt.TokenError, token: str) -> str:
    """A refused token in Realtime's words (the whole ``reason`` of a join error)."""
    if error.expired:
        return f"InvalidJWTToken: {expired_message(token)}"
    if error.reason == "signature":
        return "JwtSignatureError: Failed to validate JWT signature"
    if error.reason == "algorithm":
        return "JwtSignerError: Failed to generate JWT signer, check your JWT secret or JWKS configuration"
    if error.reason == "malformed":
        return "MalformedJWT: The token provided is not a valid JWT"
    return "InvalidJWTToken: Fields `role` and `exp` are required in JWT"


def expired_message(token: str) -> str:
    """``Token has expired N seconds ago``, as Realtime words it."""
    with contextlib.suppress(pyjwt.PyJWTError, TypeError, ValueError):
        exp = pyjwt.decode(token, options={"verify_signature": False}).get("exp")
        if isinstance(exp, int | float):
            return f"Token has expired {max(0, int(time.time() - exp))} seconds ago"
    return "Token has expired"


_CHECK_SQL = "select extension, can_read, can_write from _realtime.topic_policies($1, $2, $3, $4, $5, $6)"

_PROBE_ROLLBACK = "DSRT0"
"""SQLSTATE the function raises to roll its probes back (five characters no Postgres error uses)."""

INSTALL_SQL = f"""
-- Realtime Authorization for one (role, claims, topic): which extensions the role may read (probe rows
-- inserted as service_role, selected back as the role) and write (an insert as the role). Everything
-- happens in a subtransaction that is rolled back at the end, role and settings included; the answers
-- survive in plpgsql variables. Security invoker: the caller (the authenticator login) must be allowed
-- to become each role, as for REST.
create or replace function _realtime.topic_policies(
  p_role text, p_claims text, p_topic text, p_headers text, p_read text[], p_write text[]
) returns table (extension text, can_read boolean, can_write boolean)
language plpgsql volatile
as $$
declare
  v_ids uuid[] := array(select pg_catalog.gen_random_uuid() from pg_catalog.unnest(p_read));
  v_seen uuid[];
  v_written text[] := '{{}}';
  v_extension text;
begin
  begin
    perform pg_catalog.set_config('role', 'service_role', true);
    insert into realtime.messages (id, topic, extension)
    select probe.id, p_topic, probe.extension
      from unnest(v_ids, p_read) as probe(id, extension);
    perform pg_catalog.set_config('role', p_role, true),
            pg_catalog.set_config('realtime.topic', p_topic, true),
            pg_catalog.set_config('request.jwt.claims', p_claims, true),
            pg_catalog.set_config('request.jwt.claim.sub', coalesce(p_claims::jsonb ->> 'sub', ''), true),
            pg_catalog.set_config('request.jwt.claim.role', p_role, true),
            pg_catalog.set_config('request.headers', p_headers, true);
    v_seen := array(select m.id from realtime.messages m where m.id = any(v_ids));
    foreach v_extension in array p_write loop
      begin
        insert into realtime.messages (topic, extension) values (p_topic, v_extension);
        v_written := v_written || v_extension;
      exception when insufficient_privilege then
        null;
      end;
    end loop;
    raise exception using errcode = '{_PROBE_ROLLBACK}';
  exception when sqlstate '{_PROBE_ROLLBACK}' then
    null;
  end;
  return query
    select e.name,
           case when e.name = any(p_read) then e.id = any(v_seen) end,
           case when e.name = any(p_write) then e.name = any(v_written) end
      from unnest(array['broadcast', 'presence'],
                             array[v_ids[pg_catalog.array_position(p_read, 'broadcast')],
                                   v_ids[pg_catalog.array_position(p_read, 'presence')]]) as e(name, id)
     where e.name = any(p_read) or e.name = any(p_write);
end
$$;

revoke all on function _realtime.topic_policies(text, text, text, text, text[], text[]) from public;
"""  # noqa: S608 - only this module's constants are interpolated


async def install(conn: AnyConnection, api_role: str) -> None:
    """Create ``_realtime.topic_policies`` (``_realtime`` exists) and let ``api_role`` call it."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(hashtext('devstack_realtime_install'))")
        await conn.execute(INSTALL_SQL)
        role = await conn.fetchval("select quote_ident($1)", api_role)
        await conn.execute(
            f"grant execute on function _realtime.topic_policies(text, text, text, text, text[], text[]) to {role}"
        )


class TopicAuthorizer:
    """Runs the checks on the API pool (the ``authenticator`` login), one round trip each."""

    def __init__(self, api_pool: asyncpg.Pool) -> None:
        self._api = api_pool
        self.checks = 0
        """Checks run so far (read or write), for tests and benchmarks."""

    async def check(
        self,
        claims: dict[str, object],
        claims_json: str,
        topic: str,
        headers: dict[str, str],
        *,
        read: tuple[str, ...] = (),
        write: tuple[str, ...] = (),
    ) -> Policies:
        """The rights of ``claims`` on ``topic`` for the extensions asked; others stay None.

        Raises:
            NotAuthorized: Postgres refused the check itself (an unknown role, one the API login may not
                become, a policy that fails): Realtime takes that as "no".
            CheckFailed: The messages table has no partition for today.
            OSError, asyncpg.InterfaceError: The database cannot be reached.
        """
        role = str(claims["role"])
        self.checks += 1
        try:
            async with self._api.acquire() as conn:
                rows = await conn.fetch(
                    _CHECK_SQL, role, claims_json, topic, json.dumps(headers), list(read), list(write)
                )
        except asyncpg.CheckViolationError as error:
            if error.table_name and error.table_name.startswith("messages"):
                raise CheckFailed(
                    "MissingPartition: Realtime was unable to find the expected messages partition"
                ) from None
            raise NotAuthorized(str(error)) from None
        except (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidParameterValueError) as error:
            # The role is unknown, or not one the API login may become.
            raise NotAuthorized(str(error)) from None
        except asyncpg.PostgresError as error:
            # A policy that fails, say. Realtime logs it (RlsPolicyError) and refuses the channel.
            log.warning("realtime: authorizing %r on %s failed in the database: %s", role, topic, error)
            raise NotAuthorized(str(error)) from None
        found: dict[str, bool | None] = {}
        for extension, can_read, can_write in rows:
            found[f"{extension}_read"] = can_read
            found[f"{extension}_write"] = can_write
        return Policies().merged(**found)
