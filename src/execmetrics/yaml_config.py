"""YAML files of settings, read with the line of every item and field, so that each problem
names the file and line it is on, and all problems are reported at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError


class ConfigError(ValueError):
    """A file that cannot be applied; each line of the message names file and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_yaml(text: str, source: str, expected: str) -> tuple[yaml.MappingNode, dict[str, Any]]:
    """The document's node tree (for line numbers) and its data; ConfigError if it is not
    YAML or not a mapping."""
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        reason = getattr(error, "problem", None) or str(error)
        raise ConfigError([f"{where}: not valid YAML ({reason})"]) from None
    if not isinstance(data, dict) or not isinstance(document, yaml.MappingNode):
        raise ConfigError([f"{source}:1: expected {expected}"])
    return document, data


def parse_items(
    document: yaml.MappingNode,
    data: dict[str, Any],
    section: str,
    parse: Callable[[Any], Any],
    source: str,
    problems: list[str],
    locate: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda location: location,
    name: Callable[[Any], str] | None = None,
) -> list[Any]:
    """Each item of a list section, parsed; each problem added with its file and line."""
    items, nodes = data.get(section), child_node(document, section)
    if not isinstance(items, list) or not isinstance(nodes, yaml.SequenceNode):
        problems.append(f"{source}:{line_of(document, (section,))}: {section}: expected a list")
        return []
    parsed = []
    for index, (item, node) in enumerate(zip(items, nodes.value, strict=True)):
        label = f"{section}[{index}]" + (name(item) if name else _named(item))
        try:
            parsed.append(parse(item))
        except ValidationError as error:
            for detail in error.errors():
                where = locate(detail["loc"])
                field = f"{'.'.join(str(p) for p in where)}: " if where else ""
                reason = detail["msg"].removeprefix("Value error, ")
                problems.append(f"{source}:{line_of(node, where)}: {label}: {field}{reason}")
        except ValueError as error:
            problems.append(f"{source}:{line_of(node, ())}: {label}: {error}")
    return parsed


def _named(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return f" ({item['name']})"
    return ""


def child_node(node: yaml.Node, key: object) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                found: yaml.Node = value_node
                return found
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item: yaml.Node = node.value[key]
        return item
    return None


def line_of(node: yaml.Node, location: tuple[Any, ...]) -> int:
    """The line of the deepest part of `location` the document has (the node's own line when
    it has none of it)."""
    line = int(node.start_mark.line) + 1
    for part in location:
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                    line = int(key_node.start_mark.line) + 1
        child = child_node(node, part)
        if child is None:
            break
        if isinstance(node, yaml.SequenceNode):
            line = int(child.start_mark.line) + 1
        node = child
    return line
