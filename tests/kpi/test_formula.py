"""KPI formulas: exact arithmetic, precedence, functions, and a clear error for bad input."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execmetrics.kpi.formula import (
    MAX_DEPTH,
    MAX_LENGTH,
    Binary,
    Call,
    FormulaError,
    Name,
    Negate,
    Node,
    Number,
    evaluate,
    evaluation_order,
    names,
    parse,
)

F = Fraction


def value(text: str, **values: Fraction | None) -> Fraction | None:
    return evaluate(parse(text), values)


def test_precedence_signs_and_parentheses() -> None:
    assert value("1 + 2 * 3") == 7
    assert value("(1 + 2) * 3") == 9
    assert value("10 - 4 - 3") == 3  # left to right
    assert value("12 / 4 / 3") == 1
    assert value("-2 * -3") == 6
    assert value("--2") == 2
    assert value("+2 - +1") == 1
    assert value("0.1 + 0.2") == F(3, 10)  # exact, not 0.30000000000000004


def test_kpi_names_and_functions() -> None:
    formula = "expansion_mrr / mrr_start"
    assert names(parse(formula)) == {"expansion_mrr", "mrr_start"}
    assert value(formula, expansion_mrr=F(250), mrr_start=F(10_000)) == F(1, 40)
    assert value("max(a, b, 3)", a=F(1), b=F(2)) == 3
    assert value("min(a)", a=F(-1)) == -1
    assert value("abs(a - b)", a=F(1), b=F(5)) == 4


def test_a_missing_value_or_a_division_by_zero_has_no_value() -> None:
    assert value("a / b", a=F(1), b=F(0)) is None
    assert value("a + 1", a=None) is None
    assert value("max(a, 1)", a=None) is None
    assert value("-a", a=None) is None


def test_an_unknown_name_at_evaluation_is_an_error() -> None:
    with pytest.raises(FormulaError, match="unknown KPI 'b'"):
        value("a + b", a=F(1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1 +", "at character 4, found the end"),
        ("(1", "expected ')' at character 3"),
        ("1 2", "unexpected '2' at character 3"),
        ("a $ b", "unexpected '$' at character 3"),
        ("MRR", "unexpected 'M' at character 1"),
        ("__import__('os')", "unexpected '_' at character 1"),
        ("foo(1)", "unknown function 'foo' at character 1"),
        ("abs(1, 2)", "abs at character 1 takes exactly 1 argument, got 2"),
        ("max()", "at character 5, found ')'"),
        ("min", "min at character 1 needs '(' and arguments"),
        ("a ** 2", "at character 4, found '*'"),
        ("1,2", "unexpected ',' at character 2"),
        ("1.", "unexpected '.' at character 2"),
        ("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH}"),
        ("1+" * MAX_LENGTH, f"longer than {MAX_LENGTH} characters"),
    ],
)
def test_bad_formulas_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(FormulaError, match=re.escape(message)):
        parse(text)


def test_evaluation_order_puts_each_formula_after_what_it_reads() -> None:
    order = evaluation_order(
        {"ratio": {"part", "whole"}, "whole": {"mrr"}, "part": {"whole", "new_mrr"}},
        known={"mrr", "new_mrr"},
    )
    assert order.index("whole") < order.index("part") < order.index("ratio")
    assert set(order) == {"ratio", "whole", "part"}


def test_a_cycle_is_spelled_out() -> None:
    with pytest.raises(FormulaError, match="cycle: a -> b -> c -> a"):
        evaluation_order({"a": {"b"}, "b": {"c"}, "c": {"a"}}, known=set())
    with pytest.raises(FormulaError, match="cycle: a -> a"):
        evaluation_order({"a": {"a"}}, known=set())


def test_a_formula_reading_an_unknown_kpi_is_refused() -> None:
    with pytest.raises(FormulaError, match="ratio: unknown KPI 'nope'"):
        evaluation_order({"ratio": {"mrr", "nope"}}, known={"mrr"})


# --- any formula: its text parses back to a tree of the same value ----------------------------

VALUES = {"a": F(7, 3), "b": F(-2), "c": F(0), "d": None}
numbers = st.fractions(min_value=0, max_value=1000, max_denominator=1).map(Number) | st.builds(
    lambda whole, tenths: Number(F(whole) + F(tenths, 10)),
    st.integers(0, 99),
    st.integers(0, 9),
)
leaves = numbers | st.sampled_from([Name(n) for n in VALUES])
trees = st.recursive(
    leaves,
    lambda inner: (
        st.builds(Negate, inner)
        | st.builds(Binary, st.sampled_from("+-*/"), inner, inner)
        | st.builds(lambda args: Call("max", tuple(args)), st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda args: Call("min", tuple(args)), st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda arg: Call("abs", (arg,)), inner)
    ),
    max_leaves=12,
)


def text_of(node: Node) -> str:
    if isinstance(node, Number):
        whole, rest = divmod(node.value, 1)
        return str(whole) if rest == 0 else f"{whole}.{int(rest * 10)}"
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Negate):
        return f"-({text_of(node.operand)})"
    if isinstance(node, Binary):
        return f"({text_of(node.left)} {node.operator} {text_of(node.right)})"
    return f"{node.function}({', '.join(text_of(a) for a in node.arguments)})"


def direct(node: Node) -> Fraction | None:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Name):
        return VALUES[node.name]
    if isinstance(node, Negate):
        operand = direct(node.operand)
        return None if operand is None else -operand
    if isinstance(node, Binary):
        left, right = direct(node.left), direct(node.right)
        if left is None or right is None or (node.operator == "/" and right == 0):
            return None
        return {
            "+": lambda: left + right,
            "-": lambda: left - right,
            "*": lambda: left * right,
            "/": lambda: left / right,
        }[node.operator]()
    values = [direct(a) for a in node.arguments]
    if any(v is None for v in values):
        return None
    present = [v for v in values if v is not None]
    return {
        "abs": lambda: abs(present[0]),
        "min": lambda: min(present),
        "max": lambda: max(present),
    }[node.function]()


@settings(max_examples=300)
@given(trees)
def test_any_formula_evaluates_as_written(tree: Node) -> None:
    parsed = parse(text_of(tree))
    assert evaluate(parsed, VALUES) == direct(tree)
