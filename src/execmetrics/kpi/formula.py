"""Formulas over KPIs: a small expression language, parsed without `eval` and computed exactly.

    expression := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := ("+" | "-") factor | primary
    primary    := NUMBER | NAME | FUNCTION "(" expression ("," expression)* ")"
                | "(" expression ")"

NUMBER is a decimal (`12`, `0.25`), NAME a KPI name (`expansion_mrr`), FUNCTION one of `min`,
`max` (one or more arguments) and `abs` (one). Values are exact fractions. A value that does
not exist (a KPI without a value for the period, a division by zero) makes the whole formula
valueless, as a rate with a zero denominator is in docs/metrics.md.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from graphlib import CycleError, TopologicalSorter

MAX_LENGTH = 500
MAX_DEPTH = 40  # nesting of parentheses, calls and signs
NAME_PATTERN = r"[a-z][a-z0-9_]*"
FUNCTIONS: dict[str, tuple[int, int | None]] = {"min": (1, None), "max": (1, None), "abs": (1, 1)}
_TOKEN = re.compile(
    rf"\s*(?:(?P<number>[0-9]+(?:\.[0-9]+)?)|(?P<name>{NAME_PATTERN})|(?P<symbol>[-+*/(),]))"
)

Value = Fraction | None


class FormulaError(ValueError):
    """A formula that cannot be parsed or evaluated; the message says where and why."""


@dataclass(frozen=True)
class Number:
    value: Fraction


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Negate:
    operand: Node


@dataclass(frozen=True)
class Binary:
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    function: str
    arguments: tuple[Node, ...]


Node = Number | Name | Negate | Binary | Call


@dataclass(frozen=True)
class Token:
    kind: str  # number, name, symbol or end
    text: str
    position: int  # 1-based character position, for messages


def _tokens(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            at = position + len(text[position:]) - len(text[position:].lstrip())
            raise FormulaError(f"unexpected {text[at]!r} at character {at + 1}")
        kind = match.lastgroup or "symbol"
        start = match.start(kind)
        tokens.append(Token(kind, match.group(kind), start + 1))
        position = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.current
        self.index += 1
        return token

    def expect(self, symbol: str) -> None:
        token = self.take()
        if token.text != symbol or token.kind != "symbol":
            raise FormulaError(
                f"expected {symbol!r} at character {token.position}, {_found(token)}"
            )

    def nested(self, parse: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(
                f"nested more than {MAX_DEPTH} deep at character {self.current.position}"
            )
        try:
            return parse()
        finally:
            self.depth -= 1

    def expression(self) -> Node:
        node = self.term()
        while self.current.kind == "symbol" and self.current.text in "+-":
            operator = self.take().text
            node = Binary(operator, node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.current.kind == "symbol" and self.current.text in "*/":
            operator = self.take().text
            node = Binary(operator, node, self.factor())
        return node

    def factor(self) -> Node:
        if self.current.kind == "symbol" and self.current.text in "+-":
            sign = self.take().text
            operand = self.nested(self.factor)
            return Negate(operand) if sign == "-" else operand
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return Number(Fraction(token.text))
        if token.kind == "name":
            if self.current.text == "(" and self.current.kind == "symbol":
                return self.call(token)
            if token.text in FUNCTIONS:
                raise FormulaError(
                    f"{token.text} at character {token.position} needs '(' and arguments"
                )
            return Name(token.text)
        if token.kind == "symbol" and token.text == "(":
            node = self.nested(self.expression)
            self.expect(")")
            return node
        raise FormulaError(
            f"expected a number, a KPI name or '(' at character {token.position}, {_found(token)}"
        )

    def call(self, function: Token) -> Node:
        if function.text not in FUNCTIONS:
            raise FormulaError(
                f"unknown function {function.text!r} at character {function.position} "
                f"(expected one of {', '.join(sorted(FUNCTIONS))})"
            )
        self.expect("(")
        arguments = [self.nested(self.expression)]
        while self.current.kind == "symbol" and self.current.text == ",":
            self.take()
            arguments.append(self.nested(self.expression))
        self.expect(")")
        least, most = FUNCTIONS[function.text]
        if len(arguments) < least or (most is not None and len(arguments) > most):
            wanted = f"exactly {least}" if least == most else f"at least {least}"
            raise FormulaError(
                f"{function.text} at character {function.position} takes {wanted} "
                f"argument{'s' if (most or 2) > 1 else ''}, got {len(arguments)}"
            )
        return Call(function.text, tuple(arguments))


def _found(token: Token) -> str:
    return "found the end" if token.kind == "end" else f"found {token.text!r}"


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """The formula's syntax tree; FormulaError names the character where it goes wrong. The
    tree is immutable, so each formula is parsed once per process and shared."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise FormulaError("empty")
    parser = _Parser(text)
    node = parser.expression()
    if parser.current.kind != "end":
        token = parser.current
        raise FormulaError(f"unexpected {token.text!r} at character {token.position}")
    return node


def names(node: Node) -> set[str]:
    """The KPI names a formula reads."""
    return {n.name for n in _walk(node) if isinstance(n, Name)}


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Negate):
        yield from _walk(node.operand)
    elif isinstance(node, Binary):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, Call):
        for argument in node.arguments:
            yield from _walk(argument)


def evaluate(node: Node, values: Mapping[str, Value]) -> Value:
    """The formula's exact value, or None when a value it needs does not exist."""
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Name):
        if node.name not in values:
            raise FormulaError(f"unknown KPI {node.name!r}")
        return values[node.name]
    if isinstance(node, Negate):
        operand = evaluate(node.operand, values)
        return None if operand is None else -operand
    if isinstance(node, Binary):
        left, right = evaluate(node.left, values), evaluate(node.right, values)
        if left is None or right is None:
            return None
        if node.operator == "+":
            return left + right
        if node.operator == "-":
            return left - right
        if node.operator == "*":
            return left * right
        return None if right == 0 else left / right
    arguments = [evaluate(argument, values) for argument in node.arguments]
    if any(argument is None for argument in arguments):
        return None
    present = [argument for argument in arguments if argument is not None]
    if node.function == "abs":
        return abs(present[0])
    return min(present) if node.function == "min" else max(present)


def evaluation_order(formulas: Mapping[str, set[str]], known: set[str]) -> list[str]:
    """KPI names in an order where every formula comes after the KPIs it reads.

    `formulas` maps each formula KPI to the names it reads; `known` holds every other KPI.
    Raises FormulaError for a name that is no KPI, and for a cycle, which it spells out.
    """
    for kpi, read in sorted(formulas.items()):
        unknown = sorted(read - known - set(formulas))
        if unknown:
            raise FormulaError(f"{kpi}: unknown KPI {unknown[0]!r}")
    try:
        order = list(TopologicalSorter(dict(formulas)).static_order())
    except CycleError as error:
        # The sorter names the cycle from a node back to itself; reversed, each node reads
        # the next.
        cycle = list(reversed(error.args[1]))
        raise FormulaError(
            f"{cycle[0]}: formulas read each other in a cycle: {' -> '.join(cycle)}"
        ) from None
    return [kpi for kpi in order if kpi in formulas]
