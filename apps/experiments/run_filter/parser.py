"""The run filter language, second step: the syntax tree and the
recursive-descent parser of filters and order-by terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from apps.experiments.run_filter.tokens import (
    ATTRIBUTE,
    ATTRIBUTES,
    ENTITY_PREFIXES,
    INT,
    MAX_DEPTH,
    MAX_IN_ITEMS,
    METRIC,
    PARAM,
    RUN_STATUSES,
    STATUS,
    TAG,
    TEXT,
    TIME,
    FilterSyntaxError,
    Token,
    tokenize,
)


@dataclass(frozen=True)
class Reference:
    entity: str  # METRIC, PARAM, TAG or ATTRIBUTE
    key: str  # the metric/param/tag key, or the canonical attribute name
    position: int
    kind: str = ""  # for attributes: INT, TEXT, TIME or STATUS
    nullable: bool = True


@dataclass(frozen=True)
class Comparison:
    ref: Reference
    op: str  # = != < <= > >= in, not in, like, ilike, not like, not ilike, is null, is not null
    value: object = None  # float/int, str, datetime, or a tuple for in / not in
    position: int = 0


@dataclass(frozen=True)
class And:
    children: tuple


@dataclass(frozen=True)
class Or:
    children: tuple


@dataclass(frozen=True)
class Not:
    child: object


@dataclass(frozen=True)
class OrderTerm:
    ref: Reference
    descending: bool = False


@dataclass
class _Cursor:
    tokens: list[Token]
    index: int = 0
    depth: int = 0
    source: str = field(default="", repr=False)

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "EOF":
            self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.current.kind == "KEYWORD" and self.current.value in words

    def expect(self, kind: str, what: str) -> Token:
        if self.current.kind != kind:
            raise _error_at(self.current, f"Expected {what}")
        return self.advance()


def _error_at(token: Token, message: str) -> FilterSyntaxError:
    shown = token.text if token.kind != "EOF" else "end of expression"
    return FilterSyntaxError(f"{message} at position {token.position}, found {shown!r}.",
                             position=token.position, token=token.text)


# --- Parser ---------------------------------------------------------------------

def parse_filter(text: str | None):
    """Parse a filter expression into a syntax tree; None for an empty one."""
    if text is None or not text.strip():
        return None
    cursor = _Cursor(tokenize(text), source=text)
    node = _parse_or(cursor)
    if cursor.current.kind != "EOF":
        raise _error_at(cursor.current, "Expected 'and', 'or' or the end of the expression")
    return node


def _parse_or(cursor: _Cursor):
    children = [_parse_and(cursor)]
    while cursor.at_keyword("or"):
        cursor.advance()
        children.append(_parse_and(cursor))
    return children[0] if len(children) == 1 else Or(tuple(children))


def _parse_and(cursor: _Cursor):
    children = [_parse_not(cursor)]
    while cursor.at_keyword("and"):
        cursor.advance()
        children.append(_parse_not(cursor))
    return children[0] if len(children) == 1 else And(tuple(children))


def _parse_not(cursor: _Cursor):
    cursor.depth += 1
    if cursor.depth > MAX_DEPTH:
        raise _error_at(cursor.current, f"The expression nests deeper than {MAX_DEPTH} levels")
    try:
        if cursor.at_keyword("not"):
            cursor.advance()
            return Not(_parse_not(cursor))
        if cursor.current.kind == "LPAREN":
            opening = cursor.advance()
            node = _parse_or(cursor)
            if cursor.current.kind != "RPAREN":
                raise _error_at(cursor.current, f"Expected ')' closing the '(' at position {opening.position}")
            cursor.advance()
            return node
        return _parse_comparison(cursor)
    finally:
        cursor.depth -= 1


def _parse_reference(cursor: _Cursor) -> Reference:
    first = cursor.current
    if first.kind not in ("NAME", "QNAME"):
        raise _error_at(first, "Expected a name such as metrics.<key>, params.<key>, tags.<key> or an attribute")
    cursor.advance()
    parts = [first.value]
    while cursor.current.kind == "DOT":
        cursor.advance()
        part = cursor.current
        if part.kind not in ("NAME", "QNAME", "STRING", "NUMBER", "KEYWORD"):
            raise _error_at(part, "Expected a key after '.'")
        cursor.advance()
        parts.append(part.text if part.kind in ("NUMBER", "KEYWORD") else part.value)
    head = parts[0].lower() if first.kind == "NAME" else None
    if len(parts) > 1 and head in ENTITY_PREFIXES:
        entity = ENTITY_PREFIXES[head]
        key = ".".join(parts[1:])
    elif len(parts) == 1 and first.kind == "NAME":
        entity, key = ATTRIBUTE, parts[0]
    else:
        raise FilterSyntaxError(
            f"Unknown name {'.'.join(parts)!r} at position {first.position}: start it with metrics., params., "
            "tags. or attributes.", position=first.position, token=first.text)
    if not key:
        raise FilterSyntaxError(f"Empty key at position {first.position}.", position=first.position, token=first.text)
    if entity == ATTRIBUTE:
        known = ATTRIBUTES.get(key.lower())
        if known is None:
            names = ", ".join(sorted({v[0] for v in ATTRIBUTES.values()}))
            raise FilterSyntaxError(f"Unknown attribute {key!r} at position {first.position}; known: {names}.",
                                    position=first.position, token=first.text)
        canonical, kind, nullable = known
        return Reference(ATTRIBUTE, canonical, first.position, kind, nullable)
    return Reference(entity, key, first.position)


def _parse_comparison(cursor: _Cursor) -> Comparison:
    ref = _parse_reference(cursor)
    token = cursor.current
    if token.kind == "OP":
        cursor.advance()
        value_token = cursor.current
        if value_token.kind not in ("NUMBER", "STRING"):
            raise _error_at(value_token, f"Expected a number or a quoted string after {token.text!r}")
        cursor.advance()
        return _checked(ref, token.value, _literal(ref, token.value, value_token), token)
    negated = False
    if cursor.at_keyword("not"):
        negated = True
        cursor.advance()
        if not cursor.at_keyword("in", "like", "ilike"):
            raise _error_at(cursor.current, "Expected 'in', 'like' or 'ilike' after 'not'")
    if cursor.at_keyword("in"):
        op_token = cursor.advance()
        cursor.expect("LPAREN", "'(' after 'in'")
        items = []
        while True:
            value_token = cursor.current
            if value_token.kind not in ("NUMBER", "STRING"):
                raise _error_at(value_token, "Expected a number or a quoted string in the list")
            cursor.advance()
            items.append(_literal(ref, "in", value_token))
            if len(items) > MAX_IN_ITEMS:
                raise _error_at(value_token, f"An 'in' list holds at most {MAX_IN_ITEMS} values")
            if cursor.current.kind == "COMMA":
                cursor.advance()
                continue
            if cursor.current.kind == "RPAREN":
                cursor.advance()
                break
            raise _error_at(cursor.current, "Expected ',' or ')' in the 'in' list")
        op = "not in" if negated else "in"
        return _checked(ref, op, tuple(items), op_token)
    if cursor.at_keyword("like", "ilike"):
        op_token = cursor.advance()
        value_token = cursor.current
        if value_token.kind != "STRING":
            raise _error_at(value_token, f"Expected a quoted pattern after {op_token.text!r}")
        cursor.advance()
        op = ("not " if negated else "") + op_token.value
        return _checked(ref, op, value_token.value, op_token)
    if cursor.at_keyword("is"):
        op_token = cursor.advance()
        op = "is null"
        if cursor.at_keyword("not"):
            cursor.advance()
            op = "is not null"
        if not cursor.at_keyword("null"):
            raise _error_at(cursor.current, "Expected 'null' after 'is'")
        cursor.advance()
        return _checked(ref, op, None, op_token)
    raise _error_at(token, "Expected a comparison (=, !=, <, <=, >, >=, in, not in, like, ilike, is null)")


def _describe(ref: Reference) -> str:
    prefix = {METRIC: "metrics", PARAM: "params", TAG: "tags", ATTRIBUTE: "attributes"}[ref.entity]
    return f"{prefix}.{ref.key}"


def _literal(ref: Reference, op: str, token: Token):
    """The comparison value, converted to what the reference holds."""
    if ref.entity == METRIC or (ref.entity == ATTRIBUTE and ref.kind == INT):
        if token.kind != "NUMBER":
            raise _error_at(token, f"{_describe(ref)} is a number; expected a number")
        if ref.kind == INT and not isinstance(token.value, int):
            raise _error_at(token, f"{_describe(ref)} is a whole number")
        return token.value
    if ref.entity == ATTRIBUTE and ref.kind == TIME:
        return parse_time_literal(token)
    if ref.entity == ATTRIBUTE and ref.kind == STATUS:
        if token.kind != "STRING" or token.value not in RUN_STATUSES:
            raise _error_at(token, f"A status is one of {', '.join(RUN_STATUSES)}")
        return token.value
    # params, tags and text attributes: text. A number written where text is
    # expected means the text it was written as (params.max_depth = 5).
    if token.kind == "NUMBER":
        if op in ("<", "<=", ">", ">="):
            raise _error_at(token, f"{_describe(ref)} is text, so '{op}' against a number would compare "
                                   "lexicographically; quote the value or log the quantity as a metric")
        return token.text
    return token.value


def parse_time_literal(token: Token) -> datetime:
    """A time: milliseconds since the Unix epoch, or an ISO 8601 string
    (UTC when it has no offset)."""
    if token.kind == "NUMBER":
        try:
            return datetime.fromtimestamp(float(token.value) / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise _error_at(token, "Time out of range")
    try:
        moment = datetime.fromisoformat(str(token.value))
    except ValueError:
        raise _error_at(token, "Expected a time as milliseconds since the epoch or an ISO 8601 string")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _checked(ref: Reference, op: str, value, token: Token) -> Comparison:
    """Refuse operators that make no sense for the reference's type."""
    text_like = ref.entity in (PARAM, TAG) or ref.kind in (TEXT, STATUS)
    if op.endswith("like") and not text_like:
        raise _error_at(token, f"'{op}' needs text, but {_describe(ref)} is not text")
    if op in ("is null", "is not null") and ref.entity == ATTRIBUTE and not ref.nullable:
        raise _error_at(token, f"{_describe(ref)} is never null")
    if ref.kind == STATUS and op in ("<", "<=", ">", ">="):
        raise _error_at(token, "A status can only be compared with =, !=, in, not in, like")
    return Comparison(ref=ref, op=op, value=value, position=token.position)


def parse_order_by(items) -> list[OrderTerm]:
    """Parse ``["metrics.test_roc_auc DESC", "attributes.start_time"]``.
    Each item is a reference and an optional ASC/DESC."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    terms = []
    for text in items:
        if not isinstance(text, str) or not text.strip():
            raise FilterSyntaxError("Each order_by item must be a non-empty string.", position=0, token=str(text))
        cursor = _Cursor(tokenize(text), source=text)
        ref = _parse_reference(cursor)
        descending = False
        if cursor.at_keyword("asc", "desc"):
            descending = cursor.advance().value == "desc"
        if cursor.current.kind != "EOF":
            raise _error_at(cursor.current, f"Expected ASC, DESC or the end of order_by item {text!r}")
        terms.append(OrderTerm(ref=ref, descending=descending))
    return terms


# --- Helpers for compilers ----------------------------------------------------------

def like_to_regex(pattern: str, *, anchored: bool = True) -> str:
    """Translate a SQL LIKE pattern (``%`` any run, ``_`` one character,
    ``\\`` escapes) into a regular expression that PostgreSQL's ARE and
    Python's ``re`` read the same way: every ASCII punctuation character is
    backslash-escaped, which both treat as the literal character."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(_regex_literal(pattern[i + 1]))
            i += 2
            continue
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(_regex_literal(char))
        i += 1
    body = "".join(out)
    return f"^{body}$" if anchored else body


def _regex_literal(char: str) -> str:
    if char.isascii() and not char.isalnum():
        if char in "\n\t\r":
            return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}[char]
        return "\\" + char
    return char


def references(node) -> list[Reference]:
    """Every reference in a tree, in order of appearance."""
    if node is None:
        return []
    if isinstance(node, Comparison):
        return [node.ref]
    if isinstance(node, Not):
        return references(node.child)
    found = []
    for child in node.children:
        found.extend(references(child))
