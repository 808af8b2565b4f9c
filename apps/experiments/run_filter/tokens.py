"""The run filter language, first step: constants (entities, attributes,
keywords, limits), the error type, and the tokenizer."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


