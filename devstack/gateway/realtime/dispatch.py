"""Fan-out of captured changes to the channels whose bindings, filters and permissions admit them.

Per batch (one poll of the slot, any number of transactions), in three steps:

1. Match: for each change, the bindings that cover its table and event and whose filters hold.
2. Authorize, all checks of the batch at once: privileges per (role, table) from a cache; for
   INSERT and UPDATE on tables with row level security, subscribers with identical claims form one
   group, and per table the groups are dealt into up to ``PARALLEL_CHECKS`` concurrent
   ``visible_rows`` queries, each covering every changed row of the batch for its groups.
3. Emit in commit order: one push per channel and change, listing the ids of its matching bindings,
   the ``data`` serialized once per change and column set.

Nothing is awaited during step 3, so a channel sees its changes in commit order, and no channel
can be served with a check made for claims it no longer has (checks are redone when a token
changed while they ran).

No change is dropped silently. A check that fails because the database went away raises
(``TRANSIENT_ERRORS``), and the capture delivers the whole batch again once it answers (nothing of it
was pushed yet: pushes only happen in step 3). A check that fails otherwise (a policy that raises, a
role that vanished), or that could not be settled because the channel's token kept changing, leaves
those channels undecided: they get a ``system`` error instead of the change, and rejoin and back-fill
as the client does after one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.gateway.realtime.authz import NO_PRIVILEGES, Authorizer, Privileges
from devstack.gateway.realtime.catalog import Catalog, TableInfo
from devstack.gateway.realtime.changes import TRANSIENT_ERRORS
from devstack.gateway.realtime.channels import Channel, Hub
from devstack.gateway.realtime.filters import matches_all
from devstack.gateway.realtime.protocol import MAX_FRAME_BYTES, dumps, system_payload
from devstack.gateway.realtime.wal import Change, TypeRegistry, render_row

log = logging.getLogger(__name__)

MAX_DATA_CHARS = MAX_FRAME_BYTES // 4 - 4096
"""Above this many characters the exact UTF-8 size of ``data`` is measured (4 bytes a character at
most); above the frame limit minus room for the envelope, large values are left out (Error 413)."""
LARGE_VALUE_BYTES = 64
MAX_RECHECK_ROUNDS = 3
PARALLEL_CHECKS = 4
"""Claims groups are checked in up to this many concurrent queries per table (each covering a share of
the groups), on separate connections."""

Group = tuple[str, str]
UNDECIDED_MESSAGE = "Realtime could not check your access to a change; rejoin and fetch what you missed"


@dataclass
class _Plan:
    """One change with a table and the channels it may go to (channel → matching binding ids)."""

    change: Change
    table: TableInfo
    hits: dict[Channel, list[int]]
    selects: dict[Channel, frozenset[str] | None] = field(default_factory=dict)


class ChangeRouter:
    """Deliver batches of changes from the capture to the hub's subscribed channels."""

    def __init__(self, hub: Hub, authorizer: Authorizer, catalog: Callable[[], Catalog]) -> None:
        self._hub = hub
        self._authorizer = authorizer
        self._catalog = catalog

    async def deliver(self, changes: list[Change]) -> None:
        """Fan out one batch; raises one of ``TRANSIENT_ERRORS``, having pushed nothing, when the
        database went away during the checks."""
        catalog = self._catalog()
        plans = self._match(changes, catalog)
        if not plans:
            return
        undecided: set[tuple[object, int]] = set()
        privileges = await self._privileges(plans, undecided)
        visible = await self._visibility(plans, privileges, undecided)
        self._emit(plans, privileges, visible, undecided, catalog.types)

    # --- 1. match ----------------------------------------------------------------------------------

    def _match(self, changes: list[Change], catalog: Catalog) -> list[_Plan]:
        channels = list(self._hub.subscribed())
        if not channels:
            return []
        candidates: dict[tuple[str, str], list[tuple[Channel, Any]]] = {}
        plans = []
        for change in changes:
            table = catalog.published.get((change.schema, change.table))
            if table is None:
                continue
            where = (change.schema, change.table)
            if where not in candidates:
                candidates[where] = [
                    (channel, binding)
                    for channel in channels
                    for binding in channel.bindings
                    if binding.covers(change.schema, change.table)
                ]
            row = change.old_record if change.kind == "DELETE" else change.record
            hits: dict[Channel, list[int]] = {}
            selects: dict[Channel, frozenset[str] | None] = {}
            for channel, binding in candidates[where]:
                if binding.request.event != "*" and binding.request.event != change.kind:
                    continue
                if not matches_all(binding.filters, row):
                    continue
                hits.setdefault(channel, []).append(binding.id)
                wanted = binding.request.select
                if channel in selects:
                    previous = selects[channel]
                    selects[channel] = None if previous is None or wanted is None else previous | frozenset(wanted)
                else:
                    selects[channel] = frozenset(wanted) if wanted is not None else None
            if hits:
                plans.append(_Plan(change, table, hits, selects))
        return plans

    # --- 2. authorize ------------------------------------------------------------------------------

    async def _privileges(
        self, plans: list[_Plan], undecided: set[tuple[object, int]]
    ) -> dict[tuple[str, int], Privileges]:
        """Column privileges by (role, table oid); roles whose look-up failed go into ``undecided``."""
        wanted = {(channel.auth.role, plan.table.oid): plan.table for plan in plans for channel in plan.hits}
        keys = list(wanted)
        results = await asyncio.gather(
            *(self._authorizer.privileges(role, wanted[(role, oid)]) for role, oid in keys), return_exceptions=True
        )
        privileges = {}
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, TRANSIENT_ERRORS):
                raise result
            if isinstance(result, BaseException):
                log.warning("realtime: privileges of role %r could not be read: %s", key[0], result)
                privileges[key] = NO_PRIVILEGES
                undecided.add(key)
            else:
                privileges[key] = result
        return privileges

    async def _visibility(
        self,
        plans: list[_Plan],
        privileges: dict[tuple[str, int], Privileges],
        undecided: set[tuple[object, int]],
    ) -> dict[tuple[Group, int], set[int]]:
        """Plan indices whose row each claims group may select, by (group, table oid); groups whose
        check failed, or was still not settled after the last round, go into ``undecided``."""
        visible: dict[tuple[Group, int], set[int]] = {}
        for _ in range(MAX_RECHECK_ROUNDS):
            needed = self._needed_checks(plans, privileges, visible)
            if not needed:
                break
            calls = [
                (table, rows, chunk) for table, rows, groups in needed for chunk in _chunks(groups, PARALLEL_CHECKS)
            ]
            results = await asyncio.gather(
                *(self._authorizer.visible(chunk, table, [keys for _, keys in rows]) for table, rows, chunk in calls),
                return_exceptions=True,
            )
            for (table, rows, chunk), result in zip(calls, results, strict=True):
                if isinstance(result, TRANSIENT_ERRORS):
                    raise result
                if isinstance(result, BaseException):
                    log.warning("realtime: visibility check on %s failed: %s", table.qualified, result)
                    undecided.update((group, table.oid) for group in chunk)
                    result = {}
                for group in chunk:
                    visible[(group, table.oid)] = {rows[i][0] for i in result.get(group, ())}
        else:
            # Tokens that kept changing while their checks ran: those channels cannot be served this batch.
            for table, _, groups in self._needed_checks(plans, privileges, visible):
                undecided.update((group, table.oid) for group in groups)
        return visible

    def _needed_checks(
        self,
        plans: list[_Plan],
        privileges: dict[tuple[str, int], Privileges],
        done: dict[tuple[Group, int], set[int]],
    ) -> list[tuple[TableInfo, list[tuple[int, dict[str, str]]], list[Group]]]:
        """Checks still to run, per RLS table: its changed rows and the claims groups not checked yet
        (a channel whose token changed during a round has a new group and is checked again).

        Every group is asked about every row of its table in the batch, even rows its filters skip: one
        query per table serves all, and the extra primary-key probes cost less than more queries.
        """
        tables: dict[int, tuple[TableInfo, list[tuple[int, dict[str, str]]], dict[Group, None]]] = {}
        for index, plan in enumerate(plans):
            if plan.change.kind == "DELETE" or not plan.table.rls_enabled:
                continue
            keys = plan.change.key_text()
            if keys is None:
                continue
            groups = [
                channel.auth.group
                for channel in plan.hits
                if channel.active
                and (channel.auth.group, plan.table.oid) not in done
                and privileges.get((channel.auth.role, plan.table.oid), NO_PRIVILEGES).may_see(plan.table)
            ]
            if not groups:
                continue
            entry = tables.setdefault(plan.table.oid, (plan.table, [], {}))
            entry[1].append((index, keys))
            entry[2].update(dict.fromkeys(groups))
        return [(table, rows, list(groups)) for table, rows, groups in tables.values()]

    # --- 3. emit -----------------------------------------------------------------------------------

    def _emit(
        self,
        plans: list[_Plan],
        privileges: dict[tuple[str, int], Privileges],
        visible: dict[tuple[Group, int], set[int]],
        undecided: set[tuple[object, int]],
        types: TypeRegistry,
    ) -> None:
        told: set[Channel] = set()
        for index, plan in enumerate(plans):
            change, table = plan.change, plan.table
            rendered: dict[frozenset[str] | None, str] = {}
            for channel, ids in plan.hits.items():
                if not channel.active or channel in told:
                    continue
                if undecided and (
                    (channel.auth.role, table.oid) in undecided or (channel.auth.group, table.oid) in undecided
                ):
                    # From here on this channel is missing changes: it must rejoin and back-fill.
                    told.add(channel)
                    error = system_payload(channel.sub_topic, "postgres_changes", "error", UNDECIDED_MESSAGE)
                    channel.push("system", error)
                    continue
                privilege = privileges.get((channel.auth.role, table.oid))
                if privilege is None or not privilege.may_see(table):
                    continue
                if change.kind != "DELETE" and table.rls_enabled:
                    seen = visible.get((channel.auth.group, table.oid))
                    if seen is None or index not in seen:
                        continue
                keep = _columns_to_keep(table, privilege, plan.selects.get(channel))
                data = rendered.get(keep)
                if data is None:
                    data = rendered[keep] = render_data(change, table, types, keep)
                channel.push_change(ids, data)


def _chunks(groups: list[Group], parts: int) -> list[list[Group]]:
    """``groups`` dealt into at most ``parts`` non-empty lists."""
    count = min(parts, len(groups))
    return [groups[start::count] for start in range(count)]


def _columns_to_keep(table: TableInfo, privilege: Privileges, select: frozenset[str] | None) -> frozenset[str] | None:
    """The columns a channel may see and asked for (None: all of them, the common case)."""
    allowed = privilege.columns
    if select is None and all(column.name in allowed for column in table.columns):
        return None
    wanted = allowed if select is None else allowed & (select | frozenset(table.pk))
    return frozenset(wanted)


def render_data(change: Change, table: TableInfo, types: TypeRegistry, keep: frozenset[str] | None) -> str:
    """The ``data`` object of a push, serialized, as Realtime shapes it."""
    data = _data(change, table, types, keep, drop_large=False)
    text = dumps(data)
    if len(text) > MAX_DATA_CHARS and len(text.encode()) > MAX_FRAME_BYTES - 4096:
        data = _data(change, table, types, keep, drop_large=True)
        data["errors"] = ["Error 413: Payload Too Large"]
        text = dumps(data)
    return text


def _data(
    change: Change, table: TableInfo, types: TypeRegistry, keep: frozenset[str] | None, *, drop_large: bool
) -> dict[str, Any]:
    type_oids = {column.name: column.type_oid for column in table.columns}
    type_oids.update({column.name: column.type_oid for column in change.columns})
    data: dict[str, Any] = {
        "schema": change.schema,
        "table": change.table,
        "commit_timestamp": change.commit_timestamp,
        "type": change.kind,
        "columns": [
            {"name": column.name, "type": column.typname}
            for column in table.columns
            if keep is None or column.name in keep
        ],
        "errors": None,
    }
    if change.record is not None:
        data["record"] = _rendered(change.record, type_oids, types, keep, drop_large)
    if change.kind == "UPDATE":
        data["old_record"] = _rendered(change.old_record or {}, type_oids, types, keep, drop_large)
    elif change.kind == "DELETE":
        old_keep = keep
        if table.rls_enabled:
            # Row level security cannot be checked on a deleted row: reveal its primary key only.
            old_keep = frozenset(table.pk) if keep is None else keep & frozenset(table.pk)
        data["old_record"] = _rendered(change.old_record or {}, type_oids, types, old_keep, drop_large)
    return data


def _rendered(
    row: dict[str, Any], type_oids: dict[str, int], types: TypeRegistry, keep: frozenset[str] | None, drop_large: bool
) -> dict[str, Any]:
    values = render_row(row, type_oids, types, keep)
    if drop_large:
        values = {name: value for name, value in values.items() if len(dumps(value).encode()) <= LARGE_VALUE_BYTES}
    return values
