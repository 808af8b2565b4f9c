"""The run-search filter language: a tokenizer and a recursive-descent parser.

No Django in here: the parser turns text into a small syntax tree
(``And``/``Or``/``Not``/``Comparison``); ``apps.experiments.selectors.run_search``
compiles that tree into Django ``Q`` objects. Nothing the user types ever
reaches SQL as text.

Grammar (keywords are case-insensitive)::

    filter      := or_expr EOF
    or_expr     := and_expr ("or" and_expr)*
    and_expr    := not_expr ("and" not_expr)*
    not_expr    := "not" not_expr | "(" or_expr ")" | comparison
    comparison  := reference ( op value
                             | ["not"] "in" "(" value ("," value)* ")"
                             | ["not"] ("like" | "ilike") string
                             | "is" ["not"] "null" )
    op          := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    reference   := name ("." (name | `quoted name` | "quoted name"))*
    value       := number | 'string' | "string"

A reference is ``metrics.<key>``, ``params.<key>``, ``tags.<key>`` or
``attributes.<name>`` (``metric.``, ``param.``, ``tag.``, ``attribute.``,
``attr.`` and ``run.`` are accepted too); a bare name is an attribute. Keys
with odd characters are quoted with backticks: ``metrics.`my metric/1```.

Semantics: a comparison on a metric, param or tag the run does not have is
false (``metrics.x != 1`` does not match runs without ``x``); ``not`` is plain
logical negation, so ``not metrics.x > 1`` does match them; ``is null``
matches exactly the runs without it. Metrics compare as numbers; params and
tags are text (a number on the right of ``=``, ``!=`` or ``in`` is compared
as the text it was written as; ``<``/``>`` compare text lexicographically).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

METRIC, PARAM, TAG, ATTRIBUTE = "metric", "param", "tag", "attribute"

ENTITY_PREFIXES = {
    "metrics": METRIC, "metric": METRIC,
    "params": PARAM, "param": PARAM, "parameters": PARAM, "parameter": PARAM,
    "tags": TAG, "tag": TAG,
    "attributes": ATTRIBUTE, "attribute": ATTRIBUTE, "attr": ATTRIBUTE, "run": ATTRIBUTE,
}

INT, TEXT, TIME, STATUS = "int", "text", "time", "status"

# Attribute name -> (canonical name, type, nullable).
ATTRIBUTES = {
    "run_id": ("run_id", INT, False),
    "id": ("run_id", INT, False),
    "name": ("name", TEXT, False),
    "run_name": ("name", TEXT, False),
    "status": ("status", STATUS, False),
    "start_time": ("start_time", TIME, False),
    "end_time": ("end_time", TIME, True),
    "user": ("user", TEXT, False),
    "user_id": ("user", TEXT, False),
    "dataset_version": ("dataset_version", INT, True),
    "dataset_version_id": ("dataset_version", INT, True),
    "experiment_id": ("experiment_id", INT, False),
    "parent_run_id": ("parent_run_id", INT, True),
    "source_version": ("source_version", TEXT, False),
}

RUN_STATUSES = ("queued", "running", "finished", "failed", "killed")

KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null", "asc", "desc"}
COMPARISON_OPS = {"=", "!=", "<", "<=", ">", ">="}
OP_ALIASES = {"==": "=", "<>": "!="}
MAX_FILTER_LENGTH = 10_000
MAX_IN_ITEMS = 1_000
MAX_DEPTH = 50


class FilterSyntaxError(ValueError):
    """A filter or order-by expression that does not parse. ``position`` is
    the 0-based character offset of the offending ``token``."""

    def __init__(self, message: str, *, position: int, token: str):
        super().__init__(message)
        self.message = message
        self.position = position
        self.token = token


# --- Tokens -----------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # NAME, QNAME, NUMBER, STRING, OP, LPAREN, RPAREN, COMMA, DOT, KEYWORD, EOF
    text: str  # the source text of the token
    value: object  # the decoded value (number, string, keyword in lower case, op)
    position: int


_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OP_RE = re.compile(r"==|!=|<>|<=|>=|=|<|>")
# Tokens after which a "." or "-" cannot start a number: they end an operand.
_OPERAND_ENDS = {"NAME", "QNAME", "STRING", "NUMBER", "RPAREN"}


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, or raise FilterSyntaxError at the first
    character that cannot start one."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterSyntaxError(f"The expression is longer than {MAX_FILTER_LENGTH} characters.",
                                position=MAX_FILTER_LENGTH, token=text[MAX_FILTER_LENGTH:][:20])
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
            continue
        previous = tokens[-1].kind if tokens else None
        if char in "'\"`":
            value, end = _read_quoted(text, i)
            kind = "QNAME" if char == "`" else "STRING"
            tokens.append(Token(kind, text[i:end], value, i))
            i = end
            continue
        number = _NUMBER_RE.match(text, i)
        starts_number = char.isdigit() or (char in "-+." and previous not in _OPERAND_ENDS)
        if number and starts_number:
            literal = number.group()
            after = number.end()
            if after < n and (text[after].isalpha() or text[after] == "_"):
                end = after
                while end < n and (text[end].isalnum() or text[end] == "_"):
                    end += 1
                raise FilterSyntaxError(f"Invalid number {text[i:end]!r}.", position=i, token=text[i:end])
            value = float(literal) if any(c in literal for c in ".eE") else int(literal)
            tokens.append(Token("NUMBER", literal, value, i))
            i = after
            continue
        name = _NAME_RE.match(text, i)
        if name:
            word = name.group()
            if word.lower() in KEYWORDS and previous != "DOT":
                tokens.append(Token("KEYWORD", word, word.lower(), i))
            else:
                tokens.append(Token("NAME", word, word, i))
            i = name.end()
            continue
        op = _OP_RE.match(text, i)
        if op:
            literal = op.group()
            tokens.append(Token("OP", literal, OP_ALIASES.get(literal, literal), i))
            i = op.end()
            continue
        single = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA", ".": "DOT"}.get(char)
        if single:
            tokens.append(Token(single, char, char, i))
            i += 1
            continue
        raise FilterSyntaxError(f"Unexpected character {char!r} at position {i}.", position=i, token=char)
    tokens.append(Token("EOF", "", None, n))
    return tokens


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """A quoted string or name: the quote doubled or backslash-escaped stands
    for itself."""
    quote = text[start]
    out = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(char)
        i += 1
    what = "name" if quote == "`" else "string"
    raise FilterSyntaxError(f"Unterminated quoted {what} starting at position {start}.",
                            position=start, token=text[start:start + 20])


# --- Syntax tree --------------------------------------------------------------------

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
    return found


__all__ = [
    "ATTRIBUTE",
    "ATTRIBUTES",
    "METRIC",
    "PARAM",
    "TAG",
    "And",
    "Comparison",
    "FilterSyntaxError",
    "Not",
    "Or",
    "OrderTerm",
    "Reference",
    "like_to_regex",
    "parse_filter",
    "parse_order_by",
    "references",
    "tokenize",
]
