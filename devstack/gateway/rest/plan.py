"""The read plan of a request: which table each embedded resource comes from and how it joins. Pure.

``plan_read`` turns the parsed ``select`` into a tree of ``ReadNode``\\ s, one per embedded resource, each
with the relationship (foreign key) it is reached through, PostgREST's way:

* a name is a table (or, for many-to-one, the foreign key's constraint or column name), optionally with a
  hint (``!constraint``, ``!column``, ``!junction``) when several relationships would fit (PGRST201), or
  none does (PGRST200);
* filters, logic trees, order and paging given as ``label.column=...`` go to the embed so labelled
  (PGRST108 when there is none); ``order=label(column)`` needs a to-one embed (PGRST118);
* ``label=is.null`` / ``label=not.is.null`` filter the parent rows on whether the embed found anything.

Aliases follow PostgREST's: the root is the qualified table, an embed at depth ``d`` of table ``t`` is
``t_d``, its aggregate ``parent_label_d``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from devstack.gateway.rest.catalog import SCHEMA, Column, Relationship, Snapshot
from devstack.gateway.rest.errors import RestError
from devstack.gateway.rest.parser import Condition, Embed, Logic, Node, OrderItem, Path, Query, SelectField


@dataclass
class ReadNode:
    """One level of the read: a relation, what to select from it, how it is filtered and joined.

    Attributes:
        relation: The table (or function) name, for errors and relationship lookups.
        columns: What can be selected and filtered.
        ref: How SQL refers to the relation's columns (``"public"."t"`` or an alias).
        source: The FROM item (``"public"."t"``, ``"public"."t" AS "t_1"``, ``pgrst_source AS "t"``).
        select: The fields of this level (``SelectField``; ``*`` included).
        embeds: The embedded resources, in select order.
        where: Filters and logic trees of this level.
        order, limit, offset: Of this level.
        joins: Conditions tying this level to its parent (empty for the root).
        junction: For many-to-many, the junction table's FROM item.
        path: The labels leading here (``()`` for the root).
        depth: 0 for the root.
    """

    relation: str
    columns: dict[str, Column]
    ref: str
    source: str
    select: list[SelectField] = field(default_factory=list)
    embeds: list[EmbedPlan] = field(default_factory=list)
    where: list[Node] = field(default_factory=list)
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    joins: list[tuple[str, str, str, str]] = field(default_factory=list)
    junction: str | None = None
    path: Path = ()
    depth: int = 0

    def embed(self, label: str) -> EmbedPlan | None:
        for embed in self.embeds:
            if embed.label == label or embed.embed.name == label:
                return embed
        return None

    def column(self, name: str) -> Column:
        found = self.columns.get(name)
        if found is None:
            raise RestError(400, "42703", f"column {self.ref.split('.')[-1].strip(chr(34))}.{name} does not exist")
        return found


@dataclass
class EmbedPlan:
    """An embedded resource: the parsed embed, the relationship it uses and its own read node."""

    embed: Embed
    relationship: Relationship
    node: ReadNode
    aggregate: str

    @property
    def label(self) -> str:
        return self.embed.label

    @property
    def to_one(self) -> bool:
        return self.relationship.to_one

    @property
    def empty(self) -> bool:
        """``label()``: joined (to filter with ``!inner``) but not shown."""
        return not self.embed.select


def quote_ident(name: str) -> str:
    """A double-quoted identifier. Names reach here only after a catalog lookup; quoting is the second fence."""
    if "\x00" in name:
        raise RestError(400, "PGRST100", "identifiers cannot contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def qualified(name: str) -> str:
    return f"{quote_ident(SCHEMA)}.{quote_ident(name)}"


def plan_read(
    snapshot: Snapshot,
    relation: str,
    columns: dict[str, Column],
    query: Query,
    *,
    root_ref: str | None = None,
    root_source: str | None = None,
    root_filters: bool = True,
) -> ReadNode:
    """The read tree of ``query`` on ``relation``.

    ``root_ref``/``root_source`` replace the table itself (a mutation's or call's ``pgrst_source``);
    without ``root_filters`` the root's filters are left out (a mutation applies them itself).
    """
    root = ReadNode(
        relation=relation,
        columns=columns,
        ref=root_ref or qualified(relation),
        source=root_source or qualified(relation),
    )
    # Breadth-first over the select tree: no recursion on the request's nesting.
    pending: list[tuple[ReadNode, tuple[object, ...]]] = [(root, query.select)]
    while pending:
        node, items = pending.pop()
        for item in items:
            if isinstance(item, SelectField):
                node.select.append(item)
                continue
            assert isinstance(item, Embed)
            rel = find_relationship(snapshot, node.relation, item.name, item.hint)
            target = snapshot.tables[rel.foreign_table]
            depth = node.depth + 1
            alias = quote_ident(f"{rel.foreign_table}_{depth}")
            child = ReadNode(
                relation=rel.foreign_table,
                columns=target.columns,
                ref=alias,
                source=f"{qualified(rel.foreign_table)} AS {alias}",
                path=(*node.path, item.label),
                depth=depth,
            )
            if rel.cardinality == "m2m":
                assert rel.junction is not None
                junction = qualified(rel.junction)
                child.junction = junction
                child.joins = [(junction, j, alias, t) for j, t in rel.junction_columns]
                child.joins += [(junction, j, node.ref, c) for c, j in rel.columns]
            else:
                child.joins = [(alias, fc, node.ref, c) for c, fc in rel.columns]
            aggregate = f"{node.relation}_{item.label}_{depth}"
            node.embeds.append(EmbedPlan(item, rel, child, aggregate))
            if item.spread and not rel.to_one:
                raise RestError(
                    400,
                    "PGRST119",
                    f"A spread operation on '{item.name}' is not possible",
                    details=f"'{node.relation}' and '{item.name}' do not form a many-to-one or one-to-one relationship",
                )
            pending.append((child, item.select))
    _place(root, query, root_filters=root_filters)
    return root


def _place(root: ReadNode, query: Query, *, root_filters: bool) -> None:
    """Hand filters, order and paging to the node each names (PGRST108 for one not embedded)."""
    for path in query.paths():
        _node_at(root, path)
    nodes = [root]
    while nodes:
        node = nodes.pop()
        nodes.extend(embed.node for embed in node.embeds)
        if node is not root or root_filters:
            node.where = [_null_embed(node, item) for item in query.where_at(node.path)]
        node.order = query.order_at(node.path)
        node.limit = query.limit_at(node.path)
        node.offset = query.offset_at(node.path)
        for item in node.order:
            if item.relation is None:
                continue
            embed = node.embed(item.relation)
            if embed is None:
                raise not_embedded(item.relation)
            if not embed.to_one:
                raise RestError(
                    400,
                    "PGRST118",
                    f"A related order on '{embed.label}' is not possible",
                    details=(
                        f"'{node.relation}' and '{embed.label}' do not form a many-to-one or one-to-one relationship"
                    ),
                )


def _null_embed(node: ReadNode, item: Node) -> Node:
    """``label=is.null`` on an embed's label tests whether the embed found rows (it stays a Condition)."""
    if isinstance(item, Condition) and not item.field.path and item.operator == "is" and item.value == "null":
        embed = node.embed(item.field.name)
        if embed is not None:
            return Condition(item.field, "embed-null", embed.aggregate, item.negated)
    if isinstance(item, Logic):
        # Logic trees may test embeds too; walk them without recursion.
        return _map_logic(node, item)
    return item


def _map_logic(node: ReadNode, tree: Logic) -> Logic:
    converted: dict[int, Node] = {}
    stack: list[tuple[Logic, bool]] = [(tree, False)]
    while stack:
        current, expanded = stack.pop()
        if not expanded:
            stack.append((current, True))
            stack.extend((child, False) for child in current.items if isinstance(child, Logic))
            continue
        items = tuple(
            converted[id(child)] if isinstance(child, Logic) else _null_embed(node, child) for child in current.items
        )
        converted[id(current)] = Logic(current.op, items, current.negated)
    result = converted[id(tree)]
    assert isinstance(result, Logic)
    return result


def _node_at(root: ReadNode, path: Path) -> ReadNode:
    node = root
    for label in path:
        embed = node.embed(label)
        if embed is None:
            raise not_embedded(label)
        node = embed.node
    return node


def not_embedded(label: str) -> RestError:
    return RestError(
        400,
        "PGRST108",
        f"'{label}' is not an embedded resource in this request",
        hint=f"Verify that '{label}' is included in the 'select' query parameter.",
    )


def _single(columns: tuple[tuple[str, str], ...], side: int) -> str | None:
    return columns[0][side] if len(columns) == 1 else None


def _matches(rel: Relationship, target: str, hint: str | None, views: set[str]) -> bool:
    """PostgREST's rule for whether ``target!hint`` names ``rel`` (``findRel``)."""
    column = _single(rel.columns, 0) if rel.cardinality != "m2m" else None
    foreign_column = _single(rel.columns, 1) if rel.cardinality != "m2m" else None
    constraint = rel.constraint if rel.cardinality != "m2m" else None
    if rel.is_self:
        if hint is None:
            return (target == rel.foreign_table and rel.cardinality == "o2m") or (
                target == column and rel.cardinality == "m2o"
            )
        return target == rel.foreign_table and rel.cardinality == "o2m" and hint == foreign_column
    if hint is None:
        return (
            target == rel.foreign_table
            or (target == constraint and rel.foreign_table not in views)
            or (target == column and rel.foreign_table not in views)
        )
    return target == rel.foreign_table and (
        hint in (constraint, column, foreign_column) or (rel.junction is not None and hint == rel.junction)
    )


def find_relationship(snapshot: Snapshot, origin: str, target: str, hint: str | None) -> Relationship:
    """The one relationship ``origin?select=target!hint(...)`` means, or PostgREST's error."""
    views = {name for name, table in snapshot.tables.items() if table.is_view}
    candidates = snapshot.relationships.get(origin, [])
    found = [rel for rel in candidates if _matches(rel, target, hint, views)]
    if len(found) == 1:
        return found[0]
    if not found:
        using = f"' using the hint '{hint}" if hint else ""
        return _raise(
            RestError(
                400,
                "PGRST200",
                f"Could not find a relationship between '{origin}' and '{target}' in the schema cache",
                details=(
                    f"Searched for a foreign key relationship between '{origin}' and '{target}{using}' in the "
                    f"schema '{SCHEMA}', but no matches were found."
                ),
                hint=_suggestion(snapshot, origin, target),
            )
        )
    return _raise(
        RestError(
            300,
            "PGRST201",
            f"Could not embed because more than one relationship was found for '{origin}' and '{target}'",
            details=[_describe(rel) for rel in found],
            hint=(
                f"Try changing '{target}' to one of the following: "
                + ", ".join(f"'{rel.foreign_table}!{rel.junction or rel.constraint}'" for rel in found)
                + ". Find the desired relationship in the 'details' key."
            ),
        )
    )


def _raise(error: RestError) -> Relationship:
    raise error


_CARDINALITY_NAMES = {"m2o": "many-to-one", "o2m": "one-to-many", "o2o": "one-to-one", "m2m": "many-to-many"}


def _describe(rel: Relationship) -> dict[str, str]:
    def cols(names: list[str]) -> str:
        return "(" + ", ".join(names) + ")"

    if rel.cardinality == "m2m":
        relationship = (
            f"{rel.junction} using {rel.constraint}{cols([j for _, j in rel.columns])} and "
            f"{rel.junction_constraint}{cols([j for j, _ in rel.junction_columns])}"
        )
    else:
        relationship = (
            f"{rel.constraint} using {rel.table}{cols([c for c, _ in rel.columns])} and "
            f"{rel.foreign_table}{cols([f for _, f in rel.columns])}"
        )
    return {
        "cardinality": _CARDINALITY_NAMES[rel.cardinality],
        "embedding": f"{rel.table} with {rel.foreign_table}",
        "relationship": relationship,
    }


def _suggestion(snapshot: Snapshot, origin: str, target: str) -> str | None:
    """PostgREST's "Perhaps you meant ..." hint: a close table name, else a close related table."""
    if origin in snapshot.relationships:
        related = sorted({rel.foreign_table for rel in snapshot.relationships[origin]})
        if target in related:
            return None
        close = difflib.get_close_matches(target, related, n=1, cutoff=0.6)
        return f"Perhaps you meant '{close[0]}' instead of '{target}'." if close else None
    close = difflib.get_close_matches(origin, sorted(snapshot.relationships), n=1, cutoff=0.6)
    return f"Perhaps you meant '{close[0]}' instead of '{origin}'." if close else None
