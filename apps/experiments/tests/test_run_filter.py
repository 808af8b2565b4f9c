"""The filter language parser (pure, no database)."""

from datetime import UTC, datetime

import pytest

from apps.experiments.run_filter import (
    And,
    Comparison,
    FilterSyntaxError,
    Not,
    Or,
    like_to_regex,
    parse_filter,
    parse_order_by,
    tokenize,
)


def comparison(node):
    assert isinstance(node, Comparison)
    return node.ref.entity, node.ref.key, node.op, node.value


def test_empty_filter_is_none():
    assert parse_filter("") is None
    assert parse_filter("   ") is None
    assert parse_filter(None) is None


def test_and_binds_tighter_than_or():
    tree = parse_filter("metrics.a > 1 or metrics.b < 2 and params.c = 'x'")
    assert isinstance(tree, Or)
    assert comparison(tree.children[0]) == ("metric", "a", ">", 1)
    assert isinstance(tree.children[1], And)
    assert comparison(tree.children[1].children[1]) == ("param", "c", "=", "x")


def test_parentheses_override_precedence():
    tree = parse_filter("metrics.test_roc_auc > 0.8 and (params.estimator = 'random_forest' or tags.team like 'qc%')")
    assert isinstance(tree, And)
    assert comparison(tree.children[0]) == ("metric", "test_roc_auc", ">", 0.8)
    inner = tree.children[1]
    assert isinstance(inner, Or)
    assert comparison(inner.children[0]) == ("param", "estimator", "=", "random_forest")
    assert comparison(inner.children[1]) == ("tag", "team", "like", "qc%")


@pytest.mark.parametrize("text, op, value", [
    ("metrics.m = 1", "=", 1),
    ("metrics.m == 1", "=", 1),
    ("metrics.m != 1", "!=", 1),
    ("metrics.m <> 1", "!=", 1),
    ("metrics.m < -1.5", "<", -1.5),
    ("metrics.m <= 1e-3", "<=", 0.001),
    ("metrics.m > .5", ">", 0.5),
    ("metrics.m >= 2", ">=", 2),
    ("metrics.m in (1, 2.5, -3)", "in", (1, 2.5, -3)),
    ("metrics.m not in (1)", "not in", (1,)),
    ("tags.t like 'a%'", "like", "a%"),
    ("tags.t ILIKE 'A%'", "ilike", "A%"),
    ("tags.t not like 'a_'", "not like", "a_"),
    ("tags.t not ilike 'a_'", "not ilike", "a_"),
    ("metrics.m is null", "is null", None),
    ("metrics.m IS NOT NULL", "is not null", None),
])
def test_every_operator(text, op, value):
    node = parse_filter(text)
    assert node.op == op
    assert node.value == value


def test_keywords_are_case_insensitive_and_not_is_negation():
    tree = parse_filter("NOT (metrics.a > 1 AND metrics.b > 2) Or Not tags.x = 'y'")
    assert isinstance(tree, Or)
    assert isinstance(tree.children[0], Not) and isinstance(tree.children[0].child, And)
    assert isinstance(tree.children[1], Not)


def test_entity_prefixes_and_quoted_keys():
    assert comparison(parse_filter("metric.`my key/1` > 0")) == ("metric", "my key/1", ">", 0)
    assert comparison(parse_filter('params."odd-name" = "v"')) == ("param", "odd-name", "=", "v")
    assert comparison(parse_filter("tag.a.b = 'x'")) == ("tag", "a.b", "=", "x")
    assert comparison(parse_filter("metrics.val.roc_auc > 0.5")) == ("metric", "val.roc_auc", ">", 0.5)
    assert comparison(parse_filter("metrics.in > 0")) == ("metric", "in", ">", 0)


def test_attributes_with_and_without_prefix():
    assert comparison(parse_filter("status = 'finished'")) == ("attribute", "status", "=", "finished")
    assert comparison(parse_filter("attributes.run_name = 'x'")) == ("attribute", "name", "=", "x")
    assert comparison(parse_filter("run.id in (1, 2)")) == ("attribute", "run_id", "in", (1, 2))
    node = parse_filter("attributes.start_time >= '2024-05-01T12:00:00'")
    assert node.value == datetime(2024, 5, 1, 12, tzinfo=UTC)
    node = parse_filter("attr.end_time < 1700000000000")
    assert node.value == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert parse_filter("dataset_version is null").op == "is null"


def test_string_escapes():
    assert parse_filter("tags.t = 'it''s'").value == "it's"
    assert parse_filter(r"tags.t = 'it\'s'").value == "it's"


def test_numbers_against_params_compare_as_written_text():
    assert parse_filter("params.max_depth = 5").value == "5"
    assert parse_filter("params.lr in (0.1, 1e-3)").value == ("0.1", "1e-3")


@pytest.mark.parametrize("text, position, token", [
    ("metrics.x >", 11, ""),
    ("metrics.x = 'a'", 12, "'a'"),
    ("foo = 1", 0, "foo"),
    ("unknown.x = 1", 0, "unknown"),
    ("(metrics.x > 1", 14, ""),
    ("metrics.x > 1 metrics.y > 2", 14, "metrics"),
    ("metrics.x > 1 and", 17, ""),
    ("metrics.x ~ 2", 10, "~"),
    ("tags.a = 'abc", 9, "'abc"),
    ("metrics.x like 'a%'", 10, "like"),
    ("params.a like 3", 14, "3"),
    ("params.a > 3", 11, "3"),
    ("status = 'bogus'", 9, "'bogus'"),
    ("status > 'finished'", 7, ">"),
    ("run_id = 1.5", 9, "1.5"),
    ("start_time > 'not a date'", 13, "'not a date'"),
    ("metrics.x in ()", 14, ")"),
    ("metrics.x in (1 2)", 16, "2"),
    ("metrics.x not = 1", 14, "="),
    ("status is null", 7, "is"),
    ("metrics.x is 1", 13, "1"),
    ("metrics. > 1", 9, ">"),
    ("metrics.x > 1)", 13, ")"),
    ("metrics.x > 12abc", 12, "12abc"),
])
def test_bad_syntax_names_the_token_and_its_position(text, position, token):
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    assert caught.value.position == position
    assert caught.value.token == token
    assert str(position) in caught.value.message


def test_depth_and_length_limits():
    with pytest.raises(FilterSyntaxError):
        parse_filter("(" * 60 + "metrics.a > 1" + ")" * 60)
    with pytest.raises(FilterSyntaxError):
        parse_filter("metrics.a > 1 or " * 1000 + "metrics.a > 1")


def test_order_by():
    terms = parse_order_by(["metrics.test_roc_auc DESC", "attributes.start_time ASC", "params.x", "name desc"])
    assert [(t.ref.entity, t.ref.key, t.descending) for t in terms] == [
        ("metric", "test_roc_auc", True), ("attribute", "start_time", False), ("param", "x", False),
        ("attribute", "name", True)]
    assert parse_order_by(None) == []
    with pytest.raises(FilterSyntaxError) as caught:
        parse_order_by(["metrics.x sideways"])
    assert caught.value.token == "sideways"


def test_tokens_carry_positions():
    tokens = tokenize("metrics.a>=-1")
    assert [(t.kind, t.position) for t in tokens] == [
        ("NAME", 0), ("DOT", 7), ("NAME", 8), ("OP", 9), ("NUMBER", 11), ("EOF", 13)]


@pytest.mark.parametrize("pattern, matches, misses", [
    ("qc%", ["qc", "qc-team", "qc%x"], ["aqc", "QC"]),
    ("%lab_1", ["lab_1", "north lab21"], ["lab_12"]),
    ("a.b", ["a.b"], ["axb"]),
    (r"100\%", ["100%"], ["1000"]),
    ("(x)+[y]", ["(x)+[y]"], ["xxy"]),
])
def test_like_patterns_translate_to_equivalent_regexes(pattern, matches, misses):
    import re

    regex = re.compile(like_to_regex(pattern))
    for text in matches:
        assert regex.search(text), text
    for text in misses:
        assert not regex.search(text), text
