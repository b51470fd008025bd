"""PostgREST's query string grammar, parsed into a small syntax tree. Pure: no I/O, no catalog.

* ``select``: columns, ``*``, ``alias:column``, JSON paths (``data->a->>b``) and casts (``col::text``);
  embedded resources ``[alias:]relation[!hint][!inner|!left](...)`` nested to any depth up to
  ``MAX_EMBED_DEPTH``, and spreads ``...relation(...)``. Aggregates are refused as PostgREST refuses them
  while ``db-aggregates-enabled`` is off (PGRST123).
* Filters ``[embed.]column[->path]=[not.]operator.value`` with every PostgREST 12 operator: ``eq neq gt gte
  lt lte like ilike match imatch`` (the quantifiable ones also as ``op(any)``/``op(all)``), ``in is
  isdistinct``, ``cs cd ov sl sr nxl nxr adj``, ``fts plfts phfts wfts`` with an optional configuration.
* Logic trees ``[embed.][not.]or=(...)``/``and=(...)``, nested to any depth: parsed with an explicit stack
  so a deep tree cannot exhaust the interpreter's stack (PostgreSQL decides how deep it evaluates).
* ``[embed.]order`` (also ``relation(column)`` for a to-one embed), ``[embed.]limit``/``offset``,
  ``on_conflict``, ``columns``, and the ``Prefer`` header.

Names are returned as written; whether they exist is the planner's question (it checks the catalog).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from devstack.gateway.rest.errors import RestError, parse_error
from devstack.gateway.rest.reader import Reader

QUANTIFIABLE = frozenset({"eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
SIMPLE = frozenset({"neq", "cs", "cd", "ov", "sl", "sr", "nxl", "nxr", "adj"})
FULL_TEXT = frozenset({"fts", "plfts", "phfts", "wfts"})
OPERATORS = QUANTIFIABLE | SIMPLE | FULL_TEXT | {"in", "is", "isdistinct"}
IS_VALUES = frozenset({"null", "true", "false", "unknown"})
EMBED_PARAMS = frozenset({"order", "limit", "offset", "and", "or"})
AGGREGATES = frozenset({"sum", "avg", "count", "max", "min"})
# Deeper embedding than this is refused (each level is a lateral join PostgreSQL must plan).
MAX_EMBED_DEPTH = 32
_MAX_BIGINT = 2**63 - 1
_INDEX = re.compile(r"-?[0-9]+")

Path = tuple[str, ...]


@dataclass(frozen=True)
class JsonStep:
    """One ``->key``/``->>key`` step; ``index`` when the key is an integer (an array position)."""

    arrow: Literal["->", "->>"]
    key: str
    index: bool = False


@dataclass(frozen=True)
class Field:
    """A column, possibly followed by a JSON path."""

    name: str
    path: tuple[JsonStep, ...] = ()


@dataclass(frozen=True)
class SelectField:
    """One output column: ``*`` for all; ``alias`` renames it, ``cast`` converts it."""

    field: Field
    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True)
class Embed:
    """An embedded resource: ``name(select)`` through a relationship, optionally disambiguated by ``hint``."""

    name: str
    select: tuple[SelectItem, ...]
    alias: str | None = None
    hint: str | None = None
    inner: bool = False
    spread: bool = False

    @property
    def label(self) -> str:
        """The name the embed answers to in the result and in ``label.column`` parameters."""
        return self.alias or self.name


SelectItem = SelectField | Embed
STAR = SelectField(Field("*"))


@dataclass(frozen=True)
class Condition:
    """``field <operator> value``; ``value`` is a tuple for ``in``, a keyword for ``is``."""

    field: Field
    operator: str
    value: str | tuple[str, ...]
    negated: bool = False
    quantifier: Literal["any", "all"] | None = None
    language: str | None = None


@dataclass(frozen=True)
class Logic:
    """Conditions joined by ``and``/``or``."""

    op: Literal["and", "or"]
    items: tuple[Condition | Logic, ...]
    negated: bool = False


Node = Condition | Logic


@dataclass(frozen=True)
class OrderItem:
    """``field[.asc|.desc][.nullsfirst|.nullslast]``; ``relation`` for ``relation(field)`` (a to-one embed)."""

    field: Field
    descending: bool | None = None
    nulls: Literal["first", "last"] | None = None
    relation: str | None = None


@dataclass(frozen=True)
class Query:
    """Everything a request's query string says, beyond the path.

    Filters, logic trees, order and paging are kept with the embed path they apply to (``()`` is the
    requested table itself); ``arguments`` are the function arguments of a ``GET /rpc`` call.
    """

    select: tuple[SelectItem, ...] = (STAR,)
    where: tuple[tuple[Path, Node], ...] = ()
    order: tuple[tuple[Path, tuple[OrderItem, ...]], ...] = ()
    limits: tuple[tuple[Path, int], ...] = ()
    offsets: tuple[tuple[Path, int], ...] = ()
    on_conflict: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    arguments: tuple[tuple[str, str], ...] = ()

    def where_at(self, path: Path) -> tuple[Node, ...]:
        return tuple(node for at, node in self.where if at == path)

    def order_at(self, path: Path) -> tuple[OrderItem, ...]:
        found = [items for at, items in self.order if at == path]
        return found[-1] if found else ()

    def limit_at(self, path: Path) -> int | None:
        found = [value for at, value in self.limits if at == path]
        return found[-1] if found else None

    def offset_at(self, path: Path) -> int | None:
        found = [value for at, value in self.offsets if at == path]
        return found[-1] if found else None

    @property
    def limit(self) -> int | None:
        return self.limit_at(())

    @property
    def offset(self) -> int | None:
        return self.offset_at(())

    def paths(self) -> set[Path]:
        """Every embed path a parameter names (each must be an embed of the select)."""
        found = {at for at, _ in self.where} | {at for at, _ in self.order}
        found |= {at for at, _ in self.limits} | {at for at, _ in self.offsets}
        return {path for path in found if path}


# --- Prefer ---------------------------------------------------------------------------------------------------

_PREFERENCES: dict[str, tuple[str, str]] = {
    "resolution=merge-duplicates": ("resolution", "merge-duplicates"),
    "resolution=ignore-duplicates": ("resolution", "ignore-duplicates"),
    "return=representation": ("return_", "representation"),
    "return=minimal": ("return_", "minimal"),
    "return=headers-only": ("return_", "headers-only"),
    "params=single-object": ("params", "single-object"),
    "count=exact": ("count", "exact"),
    "count=planned": ("count", "planned"),
    "count=estimated": ("count", "estimated"),
    "tx=commit": ("tx", "commit"),
    "tx=rollback": ("tx", "rollback"),
    "missing=default": ("missing", "default"),
    "missing=null": ("missing", "null"),
    "handling=strict": ("handling", "strict"),
    "handling=lenient": ("handling", "lenient"),
}
# PostgREST's order for Preference-Applied.
_APPLIED_ORDER = ("resolution", "missing", "return_", "params", "count", "tx", "handling", "max_affected")


@dataclass(frozen=True)
class Preferences:
    """The ``Prefer`` headers as PostgREST reads them: exact values, the first of each kind wins."""

    return_: str | None = None
    count: str | None = None
    resolution: str | None = None
    missing: str | None = None
    handling: str | None = None
    tx: str | None = None
    params: str | None = None
    max_affected: int | None = None
    invalid: tuple[str, ...] = ()

    @property
    def missing_default(self) -> bool:
        return self.missing == "default"

    @property
    def strict(self) -> bool:
        return self.handling == "strict"

    def applied(self, kinds: Iterable[str]) -> str:
        """``Preference-Applied`` for the preferences an action honours, in PostgREST's order."""
        wanted = set(kinds)
        parts = []
        for kind in _APPLIED_ORDER:
            if kind not in wanted:
                continue
            if kind == "max_affected":
                if self.max_affected is not None and self.strict:
                    parts.append(f"max-affected={self.max_affected}")
                continue
            value = getattr(self, kind)
            if value is not None:
                parts.append(f"{kind.rstrip('_')}={value}")
        return ", ".join(parts)

    def check(self) -> None:
        """With ``handling=strict``, unknown preferences are an error (PGRST122)."""
        if self.strict and self.invalid:
            raise RestError(
                400,
                "PGRST122",
                "Invalid preferences given with handling=strict",
                details="Invalid preferences: " + ", ".join(self.invalid),
            )


def parse_prefer(values: Iterable[str]) -> Preferences:
    found: dict[str, object] = {}
    invalid: list[str] = []
    for header in values:
        for part in header.split(","):
            token = part.strip()
            if not token:
                continue
            known = _PREFERENCES.get(token)
            if known is not None:
                found.setdefault(known[0], known[1])
                continue
            if token.startswith("max-affected="):
                number = token.removeprefix("max-affected=")
                if re.fullmatch(r"-?[0-9]+", number) and abs(int(number)) <= _MAX_BIGINT:
                    found.setdefault("max_affected", int(number))
                    continue
            invalid.append(token)
    return Preferences(**found, invalid=tuple(invalid))  # type: ignore[arg-type]


# --- query string -------------------------------------------------------------------------------------------


def parse_query(items: Iterable[tuple[str, str]], *, rpc_read: bool = False) -> Query:
    """Parse decoded query string pairs (keys may repeat).

    For ``GET /rpc``, ``rpc_read``: a parameter whose value is not an operator expression is a function
    argument (PostgREST's rule), the others filter the function's result.
    """
    select: tuple[SelectItem, ...] = (STAR,)
    where: list[tuple[Path, Node]] = []
    order: list[tuple[Path, tuple[OrderItem, ...]]] = []
    limits: list[tuple[Path, int]] = []
    offsets: list[tuple[Path, int]] = []
    on_conflict = columns = None
    arguments: list[tuple[str, str]] = []
    for key, value in items:
        if key == "select":
            select = parse_select(value) or (STAR,)
        elif key == "columns":
            columns = parse_name_list("columns", value)
        elif key == "on_conflict":
            on_conflict = parse_name_list("on_conflict", value)
        elif key.rsplit(".", 1)[-1] in EMBED_PARAMS:
            last = key.rsplit(".", 1)[-1]
            if last in ("and", "or"):
                path, op, negated = _logic_path(key)
                where.append((path, parse_logic(op, value, negated=negated)))
            else:
                path = tuple(_tree_path(key)[:-1])
                if last == "order":
                    order.append((path, parse_order(value)))
                elif last == "limit":
                    limits.append((path, _parse_count("limit", value)))
                else:
                    offsets.append((path, _parse_count("offset", value)))
        else:
            path, condition = parse_filter_path(key, value, rpc_read=rpc_read)
            if condition is None:
                arguments.append((key, value))
            else:
                where.append((path, condition))
    return Query(
        select,
        tuple(where),
        tuple(order),
        tuple(limits),
        tuple(offsets),
        on_conflict,
        columns,
        tuple(arguments),
    )


def _parse_count(name: str, value: str) -> int:
    text = value.strip()
    if text.startswith("-") and text[1:].isdigit():
        details = (
            "Limit should be greater than or equal to zero." if name == "limit" else f"{name} must not be negative"
        )
        raise RestError(416, "PGRST103", "Requested range not satisfiable", details=details)
    if not text.isascii() or not text.isdigit() or int(text) > _MAX_BIGINT:
        raise parse_error(f"failed to parse {name} ({value})", "expecting a non-negative 64-bit integer")
    return int(text)


def _tree_path(key: str) -> list[str]:
    reader = Reader(key, f"failed to parse tree path ({key})")
    names = [reader.field_name()]
    while reader.consume("."):
        names.append(reader.field_name())
    if not reader.at_end():
        raise reader.fail("delimiter (.) or end of input")
    return names


def _logic_path(key: str) -> tuple[Path, Literal["and", "or"], bool]:
    names = _tree_path(key)
    op: Literal["and", "or"] = "and" if names[-1] == "and" else "or"
    return tuple(name for name in names[:-1] if name != "not"), op, "not" in names[:-1]


def parse_filter_path(key: str, value: str, *, rpc_read: bool = False) -> tuple[Path, Condition | None]:
    """``[embed.]column[->path]=[not.]operator.value``; None as the condition for an RPC argument."""
    reader = Reader(key, f"failed to parse tree path ({key})")
    names = [reader.field_name()]
    while reader.consume("."):
        names.append(reader.field_name())
    path = json_path(reader)
    if not reader.at_end():
        raise reader.fail('"->", delimiter (.) or end of input')
    field = Field(names[-1], path)
    if rpc_read:
        try:
            return tuple(names[:-1]), parse_filter(field, value)
        except RestError:
            return tuple(names[:-1]), None
    return tuple(names[:-1]), parse_filter(field, value)


def parse_filter(field: Field | str, value: str) -> Condition:
    """The value of a filter parameter, ``[not.]operator.value``, for ``field``."""
    if isinstance(field, str):
        field = Field(field)
    reader = Reader(value, f"failed to parse filter ({value})")
    negated = reader.consume("not.")
    return _operation(reader, field, negated, in_logic=False)


def _operation(reader: Reader, field: Field, negated: bool, *, in_logic: bool) -> Condition:
    start = reader.pos
    while reader.peek().isalpha():
        reader.pos += 1
    operator = reader.text[start : reader.pos]
    if operator not in OPERATORS:
        reader.pos = start
        raise reader.fail('"not" or operator (eq, gt, ...)' if not negated else "operator (eq, gt, ...)")
    quantifier: Literal["any", "all"] | None = None
    language = None
    if reader.peek() == "(":
        if operator in QUANTIFIABLE:
            if reader.consume("(any)"):
                quantifier = "any"
            elif reader.consume("(all)"):
                quantifier = "all"
            else:
                raise reader.fail("operator (eq, gt, ...)")
        elif operator in FULL_TEXT:
            reader.pos += 1
            language = reader.identifier()
            reader.expect(")")
        else:
            raise reader.fail("delimiter (.)")
    reader.expect(".", "delimiter (.)")
    if operator == "in":
        values = _list(reader)
        if not in_logic and not reader.at_end():
            raise reader.fail("end of input")
        return Condition(field, "in", values, negated)
    if operator == "is":
        keyword = (_logic_value(reader) if in_logic else reader.rest()).lower()
        if keyword not in IS_VALUES:
            raise parse_error(
                f'"{reader.source}" (line 1, column {start + 4})',
                "expecting null or trilean value (unknown, true, false)",
            )
        return Condition(field, "is", keyword, negated)
    operand = _logic_value(reader) if in_logic else reader.rest()
    if operator in ("like", "ilike"):
        # PostgREST's URL-friendly wildcard: * stands for %.
        operand = operand.replace("*", "%")
    return Condition(field, operator, operand, negated, quantifier, language)


def _list(reader: Reader) -> tuple[str, ...]:
    """``(a,"b,c",d)``: double quotes protect commas and parentheses; ``()`` is the empty list."""
    reader.skip_blanks()
    reader.expect("(")
    reader.skip_blanks()
    values: list[str] = []
    while True:
        if reader.peek() == '"':
            start = reader.pos
            quoted = reader.quoted()
            if reader.peek() in (",", ")"):
                values.append(quoted)
            else:
                reader.pos = start
                values.append(reader.until(",)"))
        else:
            values.append(reader.until(",)"))
        if reader.peek() == ",":
            reader.pos += 1
            continue
        reader.expect(")", '"," or ")"')
        reader.skip_blanks()
        return () if values == [""] else tuple(values)


def _logic_value(reader: Reader) -> str:
    """An operand inside a logic tree: quoted, a ``{...}`` array literal, or text up to ``,`` or ``)``."""
    start = reader.pos
    if reader.peek() == '"':
        quoted = reader.quoted()
        if reader.peek() in (",", ")", ""):
            return quoted
        reader.pos = start
    elif reader.peek() == "{":
        end = reader.text.find("}", start)
        inner = reader.text[start + 1 : end] if end != -1 else "{"
        if end != -1 and "{" not in inner:
            reader.pos = end + 1
            return reader.text[start : end + 1]
    return reader.until(",)")


def json_path(reader: Reader) -> tuple[JsonStep, ...]:
    steps: list[JsonStep] = []
    while reader.startswith("->"):
        arrow: Literal["->", "->>"] = "->>" if reader.startswith("->>") else "->"
        reader.pos += len(arrow)
        match = _INDEX.match(reader.text, reader.pos)
        if match:
            after = reader.text[match.end() : match.end() + 2]
            # An integer is an array index only when the step ends there (else it starts a key: ->1a).
            if not after or after in ("->", "::") or after[:1] in ".,)":
                reader.pos = match.end()
                steps.append(JsonStep(arrow, str(int(match.group())), index=True))
                continue
        steps.append(JsonStep(arrow, reader.json_key()))
    return tuple(steps)


def _field(reader: Reader) -> Field:
    name = reader.field_name()
    return Field(name, json_path(reader))


# --- logic trees ----------------------------------------------------------------------------------------------


def parse_logic(op: Literal["and", "or"], value: str, *, negated: bool = False) -> Logic:
    """The value of ``or=``/``and=``: ``(item,item,...)``, items being conditions or nested trees.

    Iterative: the open trees are an explicit stack, so nesting depth costs memory, not recursion.
    """
    reader = Reader(value, f"failed to parse logic tree ({value})")
    reader.skip_blanks()
    reader.expect("(")
    stack: list[tuple[Literal["and", "or"], bool, list[Node]]] = [(op, negated, [])]
    while True:
        reader.skip_blanks()
        condition = _try_logic_condition(reader)
        if condition is None:
            sub_negated = reader.consume("not.")
            sub: Literal["and", "or"]
            if reader.consume("and"):
                sub = "and"
            elif reader.consume("or"):
                sub = "or"
            else:
                raise reader.fail("field name (* or [a..z0..9_$]), negation operator (not) or logic operator (and, or)")
            reader.skip_blanks()
            reader.expect("(")
            stack.append((sub, sub_negated, []))
            continue
        stack[-1][2].append(condition)
        while True:
            reader.skip_blanks()
            if reader.consume(","):
                break
            if reader.peek() != ")":
                raise reader.fail('"," or ")"')
            reader.pos += 1
            tree_op, tree_negated, items = stack.pop()
            tree = Logic(tree_op, tuple(items), tree_negated)
            if not stack:
                reader.skip_blanks()
                if not reader.at_end():
                    raise reader.fail("end of input")
                return tree
            stack[-1][2].append(tree)


def _try_logic_condition(reader: Reader) -> Condition | None:
    start = reader.pos
    try:
        field = _field(reader)
        reader.skip_blanks()
        reader.expect(".")
        negated = reader.consume("not.")
        return _operation(reader, field, negated, in_logic=True)
    except RestError:
        reader.pos = start
        return None


# --- select ---------------------------------------------------------------------------------------------------


@dataclass
class _Open:
    """An embed whose ``(`` was read and whose children are being collected."""

    name: str
    alias: str | None
    hint: str | None
    inner: bool
    spread: bool
    items: list[SelectItem]


def parse_select(value: str) -> tuple[SelectItem, ...]:
    """The ``select`` parameter; ``()`` when it is empty (which means ``*``)."""
    reader = Reader(value, f"failed to parse select parameter ({value})")
    reader.skip_blanks()
    if reader.at_end():
        return ()
    top: list[SelectItem] = []
    stack: list[_Open] = []
    while True:
        reader.skip_blanks()
        items = stack[-1].items if stack else top
        if not (stack and not items and reader.peek() == ")"):
            item = _select_item(reader)
            if isinstance(item, _Open):
                if len(stack) >= MAX_EMBED_DEPTH:
                    raise parse_error(
                        f"failed to parse select parameter ({value})",
                        f"embedded resources are nested deeper than {MAX_EMBED_DEPTH} levels",
                    )
                stack.append(item)
                continue
            items.append(item)
        while True:
            reader.skip_blanks()
            if stack and reader.consume(")"):
                done = stack.pop()
                embed = Embed(done.name, tuple(done.items), done.alias, done.hint, done.inner, done.spread)
                (stack[-1].items if stack else top).append(embed)
                continue
            break
        if reader.at_end():
            if stack:
                raise reader.fail('")"')
            return tuple(top)
        reader.expect(",", '"," or ")"' if stack else '"," or end of input')


def _select_item(reader: Reader) -> SelectItem | _Open:
    start = reader.pos
    if reader.consume("..."):
        name = reader.field_name()
        hint, inner = _embed_params(reader)
        reader.expect("(")
        return _Open(name, None, hint, inner, True, [])
    try:
        alias = None
        name = reader.field_name()
        if reader.peek() == ":" and reader.peek(1) != ":":
            reader.pos += 1
            reader.skip_blanks()
            alias, name = name, reader.field_name()
        if name != "count" or reader.peek() != "(":
            hint, inner = _embed_params(reader)
            if reader.consume("("):
                return _Open(name, alias, hint, inner, False, [])
    except RestError:
        pass
    reader.pos = start
    return _select_field(reader)


def _embed_params(reader: Reader) -> tuple[str | None, bool]:
    hint, inner = None, False
    for _ in range(2):
        if not reader.consume("!"):
            break
        word = reader.field_name()
        if word == "inner":
            inner = True
        elif word != "left":
            hint = word
    return hint, inner


def _select_field(reader: Reader) -> SelectField:
    if reader.consume("*"):
        _select_end(reader)
        return STAR
    alias = None
    start = reader.pos
    try:
        name = reader.field_name()
        if reader.peek() == ":" and reader.peek(1) != ":":
            reader.pos += 1
            reader.skip_blanks()
            alias = name
        else:
            reader.pos = start
    except RestError:
        reader.pos = start
    if reader.startswith("count()"):
        raise _aggregates()
    field = _field(reader)
    cast = reader.identifier() if reader.consume("::") else None
    if reader.peek() == ".":
        word = reader.text[reader.pos + 1 :].split("(", 1)[0]
        if word in AGGREGATES:
            raise _aggregates()
    _select_end(reader)
    return SelectField(field, alias, cast)


def _select_end(reader: Reader) -> None:
    reader.skip_blanks()
    if reader.peek() not in (",", ")", ""):
        raise reader.fail('"->", "::", ",", ")" or end of input')


def _aggregates() -> RestError:
    return RestError(400, "PGRST123", "Use of aggregate functions is not allowed")


# --- order, names ---------------------------------------------------------------------------------------------


def parse_order(value: str) -> tuple[OrderItem, ...]:
    reader = Reader(value, f"failed to parse order ({value})")
    items = []
    while True:
        reader.skip_blanks()
        relation = None
        start = reader.pos
        try:
            name = reader.field_name()
            if reader.consume("("):
                relation = name
                field = _field(reader)
                reader.expect(")")
            else:
                reader.pos = start
                field = _field(reader)
        except RestError:
            reader.pos = start
            field = _field(reader)
        descending = None
        nulls: Literal["first", "last"] | None = None
        if reader.consume(".asc"):
            descending = False
        elif reader.consume(".desc"):
            descending = True
        if reader.consume(".nullsfirst"):
            nulls = "first"
        elif reader.consume(".nullslast"):
            nulls = "last"
        reader.skip_blanks()
        items.append(OrderItem(field, descending, nulls, relation))
        if reader.at_end():
            return tuple(items)
        if reader.peek() == ".":
            raise reader.fail('"asc", "desc", "nullsfirst" or "nullslast"')
        reader.expect(",", '"," or end of input')


def parse_name_list(name: str, value: str) -> tuple[str, ...]:
    """``a,b`` or ``"a","b"`` (the client quotes each key of ``columns``)."""
    reader = Reader(value, f"failed to parse {name} parameter ({value})")
    names: list[str] = []
    while True:
        reader.skip_blanks()
        names.append(reader.field_name())
        reader.skip_blanks()
        if reader.at_end():
            return tuple(names)
        reader.expect(",", '"," or end of input')
