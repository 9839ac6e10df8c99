"""Configuration as code: the YAML file `execmetrics kpis apply` reads and `kpis export`
writes, with KPIs, alert rules, escalation policies and channels.

    kpis:      [...]   # docs/kpis.md
    rules:     [...]   # docs/alerts.md
    policies:  [...]   # docs/notifications.md, "Escalation"
    channels:  [...]   # docs/notifications.md, "Channels"

A section left out leaves what is stored of it alone. Every problem is reported with the
file and line of the item (and of the field, when the field is there), all at once; nothing
is applied while any remains, and a change is checked as a whole: a rule may not watch a KPI
that does not exist, nor name a policy or channel that does not.

A channel's secrets may be written as `${NAME}`, read from the environment variable NAME
when the file is applied, so that the file itself need not hold them; an export shows none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import Connection

from execmetrics.alerts.escalation import EscalationPolicy
from execmetrics.alerts.rules import AlertRule, check_rule_references
from execmetrics.alerts.service import current_policies, current_rules
from execmetrics.kpi.definitions import KpiDefinition, check_references
from execmetrics.kpi.formula import FormulaError
from execmetrics.kpi.service import apply_kpis, current_kpis
from execmetrics.notify.channels import SECRET_FIELDS
from execmetrics.notify.registry import (
    RESERVED,
    ChannelEntry,
    Sealer,
    apply_channels,
    check_destinations,
)
from execmetrics.notify.registry import current_channels as stored_channels
from execmetrics.store import versions
from execmetrics.store.tables import alert_rule_versions, escalation_policy_versions
from execmetrics.yaml_config import ConfigError, line_of, load_yaml, parse_items

SECTIONS = ("kpis", "rules", "policies", "channels")
_ENVIRONMENT_REFERENCE = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")


@dataclass(frozen=True)
class Declared:
    """What a file declares; None for a section it leaves out."""

    kpis: list[KpiDefinition] | None = None
    rules: list[AlertRule] | None = None
    policies: list[EscalationPolicy] | None = None
    channels: list[ChannelEntry] | None = None


def read_declared(path: Path) -> Declared:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot be read ({error})"]) from None
    return parse_declared(text, str(path))


def parse_declared(text: str, source: str) -> Declared:
    document, data = load_yaml(text, source, "a mapping with kpis, rules, policies or channels")
    problems = [
        f"{source}:{line_of(document, (key,))}: unknown section {key!r} "
        f"(expected {', '.join(SECTIONS)})"
        for key in data
        if key not in SECTIONS
    ]
    parsers = _parsers(environment=True)
    sections = {
        name: parse_items(
            document, data, name, parse, source, problems, partial(_located, name),
        )
        for name, parse in parsers.items()
        if name in data
    }  # fmt: skip
    if problems:
        raise ConfigError(problems)
    return Declared(**sections)


def declared_from_data(data: dict[str, list[Any] | None]) -> Declared:
    """What an API request declares: the same sections as a file, each item named by its
    place (`rules[2].condition.below`) in the problems; `${NAME}` is not read from the
    server's environment here, which is the file's convenience for its own operator."""
    problems: list[str] = []
    sections: dict[str, list[Any]] = {}
    for name, parse in _parsers(environment=False).items():
        items = data.get(name)
        if items is None:
            continue
        sections[name] = []
        for index, item in enumerate(items):
            try:
                sections[name].append(parse(item))
            except ValidationError as error:
                for detail in error.errors(include_input=False):
                    where = ".".join(str(part) for part in _located(name, detail["loc"]))
                    reason = detail["msg"].removeprefix("Value error, ")
                    problems.append(f"{name}[{index}]{'.' if where else ''}{where}: {reason}")
            except ValueError as error:
                problems.append(f"{name}[{index}]: {error}")
    if problems:
        raise ConfigError(problems)
    return Declared(**sections)


def _parsers(environment: bool) -> dict[str, Callable[[Any], Any]]:
    def channel(item: Any) -> ChannelEntry:
        return ChannelEntry.from_flat(_with_environment(item) if environment else item)

    return {
        "kpis": KpiDefinition.model_validate,
        "rules": AlertRule.model_validate,
        "policies": EscalationPolicy.model_validate,
        "channels": channel,
    }


def _located(section: str, location: tuple[Any, ...]) -> tuple[Any, ...]:
    return _channel_location(location) if section == "channels" else location


def _channel_location(location: tuple[Any, ...]) -> tuple[Any, ...]:
    # A channel's own fields sit beside its name in the file, not under `channel`, and the
    # discriminated union adds the kind to the path.
    if location[:1] == ("channel",):
        rest = location[1:]
        return rest[1:] if rest and rest[0] in SECRET_FIELDS else rest
    return location


def _with_environment(item: Any) -> Any:
    """A channel item with each `${NAME}` secret read from the environment."""
    if not isinstance(item, dict):
        return item
    resolved = dict(item)
    for field in {f for fields in SECRET_FIELDS.values() for f in fields}:
        value = resolved.get(field)
        match = _ENVIRONMENT_REFERENCE.match(value) if isinstance(value, str) else None
        if match:
            name = match.group(1)
            if name not in os.environ:
                raise ValueError(f"{field}: environment variable {name} is not set")
            resolved[field] = os.environ[name]
    return resolved


def apply_declared(
    connection: Connection,
    declared: Declared,
    actor: str,
    sealer: Sealer,
    prune: bool = False,
    dry_run: bool = False,
    allow: Sequence[str] = (),
) -> dict[str, versions.Diff]:
    """Apply every section the file has, in the caller's transaction; ConfigError, before
    anything is written, if the result would refer to something that does not exist or a
    channel would send to an address the outbound guard refuses (`allow` lists exceptions)."""
    _check_whole(connection, declared, prune, sealer)
    unsafe = check_destinations(declared.channels or [], allow)
    if unsafe:
        raise ConfigError(unsafe)
    diffs: dict[str, versions.Diff] = {}
    if declared.kpis is not None:
        diffs["kpis"] = apply_kpis(connection, declared.kpis, actor, prune, dry_run)
    if declared.channels is not None:
        diffs["channels"] = apply_channels(
            connection, declared.channels, sealer, actor, prune, dry_run
        )
    for section, table in (
        ("policies", escalation_policy_versions),
        ("rules", alert_rule_versions),
    ):
        items = getattr(declared, section)
        if items is not None:
            given = {item.name: item.model_dump(mode="json") for item in items}
            diffs[section] = versions.apply(connection, table, given, actor, prune, dry_run)
    return diffs


def _check_whole(connection: Connection, declared: Declared, prune: bool, sealer: Sealer) -> None:
    def after(given: list[Any] | None, stored: dict[str, Any]) -> set[str]:
        names = {item.name for item in given or []}
        return names if (given is not None and prune) else names | set(stored)

    for section in SECTIONS:
        _no_duplicates(section, getattr(declared, section) or [])
    if declared.kpis is not None:
        try:
            kept = {} if prune else {n: k.definition for n, k in current_kpis(connection).items()}
            check_references(list((kept | {d.name: d for d in declared.kpis}).values()))
        except FormulaError as error:
            raise ConfigError([f"kpis: {error}"]) from None
    kpis = after(declared.kpis, current_kpis(connection))
    policies = after(declared.policies, current_policies(connection))
    channels = after(declared.channels, stored_channels(connection, sealer)) | set(RESERVED)
    rules = declared.rules
    if rules is None:
        rules = [stored.rule for stored in current_rules(connection).values()]
    elif not prune:
        given = {rule.name for rule in rules}
        rules = rules + [s.rule for n, s in current_rules(connection).items() if n not in given]
    problems = check_rule_references(rules, kpis, policies, channels)
    for policy in declared.policies or []:
        for level_number, level in enumerate(policy.levels):
            for recipient in level.recipients:
                kind, _, target = recipient.partition(":")
                if kind == "channel" and target not in channels:
                    problems.append(
                        f"policies.{policy.name}.levels.{level_number}: unknown channel {target!r}"
                    )
    if problems:
        raise ConfigError(problems)


def _no_duplicates(section: str, items: list[Any]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ConfigError([f"{section}: {item.name!r} is given twice"])
        seen.add(item.name)


def stored_declared(connection: Connection, sealer: Sealer) -> Declared:
    """Everything stored, as a file would declare it."""
    return Declared(
        kpis=[kpi.definition for kpi in current_kpis(connection).values()],
        rules=[stored.rule for stored in current_rules(connection).values()],
        policies=[stored.policy for stored in current_policies(connection).values()],
        channels=list(stored_channels(connection, sealer).values()),
    )


def export_document(declared: Declared) -> str:
    """The YAML of a declaration, each item with the fields that differ from the defaults,
    channels without their secrets (which `apply` then keeps); empty sections left out."""
    document: dict[str, list[Any]] = {}
    for section in SECTIONS:
        items = getattr(declared, section) or []
        if section == "channels":
            document[section] = [_exported_channel(entry) for entry in items]
        elif section == "rules":
            document[section] = [_exported_rule(rule) for rule in items]
        else:
            document[section] = [i.model_dump(mode="json", exclude_defaults=True) for i in items]
    return yaml.safe_dump(
        {name: items for name, items in document.items() if items},
        sort_keys=False,
        allow_unicode=True,
    )


def _exported_rule(rule: AlertRule) -> dict[str, Any]:
    data: dict[str, Any] = rule.model_dump(mode="json", exclude_defaults=True)
    # The kind tells the conditions apart, though each model has it as a default.
    data["condition"] = {"kind": rule.condition.kind} | data["condition"]
    return data


def _exported_channel(entry: ChannelEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"name": entry.name}
    if not entry.send_resolved:
        data["send_resolved"] = False
    data["kind"] = entry.channel.kind
    data |= entry.channel.model_dump(mode="json", exclude_defaults=True)
    for field in SECRET_FIELDS[entry.channel.kind]:
        data.pop(field, None)
    return data
