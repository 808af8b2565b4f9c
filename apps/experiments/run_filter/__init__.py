"""The run filter language (what ``/runs/search/`` and the run pages filter
by): a tokenizer (``tokens.py``) and a recursive-descent parser (``parser.py``).

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

from apps.experiments.run_filter.parser import (
    And,
    Comparison,
    Not,
    Or,
    OrderTerm,
    Reference,
    like_to_regex,
    parse_filter,
    parse_order_by,
    parse_time_literal,
    references,
)
from apps.experiments.run_filter.tokens import (
    ATTRIBUTE,
    ATTRIBUTES,
    COMPARISON_OPS,
    ENTITY_PREFIXES,
    INT,
    KEYWORDS,
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_IN_ITEMS,
    METRIC,
    OP_ALIASES,
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

__all__ = [
    "ATTRIBUTE",
    "ATTRIBUTES",
    "COMPARISON_OPS",
    "ENTITY_PREFIXES",
    "INT",
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_FILTER_LENGTH",
    "MAX_IN_ITEMS",
    "METRIC",
    "OP_ALIASES",
    "PARAM",
    "RUN_STATUSES",
    "STATUS",
    "TAG",
    "TEXT",
    "TIME",
    "And",
    "Comparison",
    "FilterSyntaxError",
    "Not",
    "Or",
    "OrderTerm",
    "Reference",
    "Token",
    "like_to_regex",
    "parse_filter",
    "parse_order_by",
    "parse_time_literal",
    "references",
    "tokenize",
]
