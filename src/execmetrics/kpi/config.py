"""KPIs as code: the YAML file `execmetrics kpis apply` reads and `kpis export` writes.

    kpis:
      - name: mrr
        title: MRR
        metric: mrr_end
        ...

Every problem is reported with the file and line of the KPI (and of the field, when the
field is there), all of them at once; nothing is applied while any remains.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from execmetrics.kpi.definitions import KpiDefinition

SECTIONS = ("kpis",)
STARTER = "starter.yaml"


class ConfigError(ValueError):
    """A KPI file that cannot be applied; each line of the message names file and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_config(path: Path) -> list[KpiDefinition]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot be read ({error})"]) from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str) -> list[KpiDefinition]:
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        reason = getattr(error, "problem", None) or str(error)
        raise ConfigError([f"{where}: not valid YAML ({reason})"]) from None
    if not isinstance(data, dict) or not isinstance(document, yaml.MappingNode):
        raise ConfigError([f"{source}:1: expected a mapping with a 'kpis' list"])
    problems = [
        f"{source}:{_line(document, key)}: unknown section {key!r} (expected {', '.join(SECTIONS)})"
        for key in data
        if key not in SECTIONS
    ]
    items = data.get("kpis")
    item_nodes = _value_node(document, "kpis")
    if not isinstance(items, list) or not isinstance(item_nodes, yaml.SequenceNode):
        raise ConfigError([*problems, f"{source}:{_line(document, 'kpis')}: kpis: expected a list"])
    definitions: list[KpiDefinition] = []
    for index, (item, node) in enumerate(zip(items, item_nodes.value, strict=True)):
        label = f"kpis[{index}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label += f" ({item['name']})"
        try:
            definitions.append(KpiDefinition.model_validate(item))
        except ValidationError as error:
            for detail in error.errors():
                location = ".".join(str(part) for part in detail["loc"])
                line = _field_line(node, detail["loc"]) or node.start_mark.line + 1
                field = f"{location}: " if location else ""
                reason = detail["msg"].removeprefix("Value error, ")
                problems.append(f"{source}:{line}: {label}: {field}{reason}")
    if problems:
        raise ConfigError(problems)
    return definitions


def export_config(definitions: list[KpiDefinition]) -> str:
    """The YAML of a set of definitions, each with the fields that differ from the defaults."""
    items = [d.model_dump(mode="json", exclude_defaults=True) for d in definitions]
    return yaml.safe_dump({"kpis": items}, sort_keys=False, allow_unicode=True)


def starter_kpis() -> list[KpiDefinition]:
    """The KPIs a new database starts with (kpi/starter.yaml)."""
    resource = files("execmetrics.kpi") / STARTER
    return parse_config(resource.read_text(encoding="utf-8"), STARTER)


def _value_node(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            found: yaml.Node = value_node
            return found
    return None


def _line(mapping: yaml.MappingNode, key: str) -> int:
    for key_node, _ in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return int(key_node.start_mark.line) + 1
    return int(mapping.start_mark.line) + 1


def _field_line(node: yaml.Node, location: tuple[Any, ...]) -> int | None:
    """The line of the field an error names, when the item has it."""
    if not location or not isinstance(node, yaml.MappingNode):
        return None
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == location[0]:
            return int(key_node.start_mark.line) + 1
    return None
