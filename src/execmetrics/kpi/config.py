"""The starter KPIs a new database begins with (kpi/starter.yaml), in the form of the
configuration file `execmetrics kpis apply` reads (as_code.py)."""

from __future__ import annotations

from importlib.resources import files

from execmetrics.kpi.definitions import KpiDefinition
from execmetrics.yaml_config import ConfigError, load_yaml, parse_items

STARTER = "starter.yaml"


def starter_kpis() -> list[KpiDefinition]:
    text = (files("execmetrics.kpi") / STARTER).read_text(encoding="utf-8")
    document, data = load_yaml(text, STARTER, "a mapping with a 'kpis' list")
    problems: list[str] = []
    kpis = parse_items(document, data, "kpis", KpiDefinition.model_validate, STARTER, problems)
    if problems:
        raise ConfigError(problems)
    return kpis
