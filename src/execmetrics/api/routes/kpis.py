"""KPIs: their definitions, current values and history (docs/kpis.md)."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from execmetrics.api.deps import DbDep, ExecutiveCaller, ServerDep, ViewerCaller
from execmetrics.api.problems import PROBLEM_RESPONSES
from execmetrics.api.schemas import (
    ConfigApplied,
    ConfigApply,
    FieldChange,
    KpiCurrent,
    KpiHistory,
    KpiHistoryRow,
    KpiOut,
    SectionDiff,
)
from execmetrics.as_code import apply_declared, declared_from_data
from execmetrics.errors import InvalidParameter, NotFound
from execmetrics.kpi.benchmarks import band_beside, load_bands
from execmetrics.kpi.evaluation import current_values, value_history
from execmetrics.kpi.formula import NAME_PATTERN
from execmetrics.kpi.service import current_kpis
from execmetrics.metrics.service import as_decimal
from execmetrics.notify.registry import sealer
from execmetrics.store.versions import Diff
from execmetrics.timeutil import format_micros
from execmetrics.yaml_config import ConfigError

router = APIRouter(prefix="/api/v1", tags=["kpis"], responses=PROBLEM_RESPONSES)

PERIOD = r"^[0-9]{4}(-[0-9]{2}|-Q[1-4])?$"
KpiName = Annotated[str, Path(max_length=64, pattern=rf"^{NAME_PATTERN}$")]


@router.get("/kpis", response_model=list[KpiOut])
def kpis(_: ViewerCaller, connection: DbDep) -> list[KpiOut]:
    """Every current KPI definition, with its version."""
    return [
        KpiOut.model_validate({"version": kpi.version, **kpi.definition.model_dump(mode="json")})
        for kpi in current_kpis(connection).values()
    ]


@router.get("/kpis/current", response_model=list[KpiCurrent])
def kpis_current(_: ViewerCaller, connection: DbDep, state: ServerDep) -> list[KpiCurrent]:
    """Each KPI's latest stored value for its current version, whether it meets its targets
    (null when nothing applies or nothing is stored yet), and the benchmark band beside it
    when one describes a period like the value's."""
    bands = load_bands(state.settings.benchmarks_file)
    definitions = {name: kpi.definition for name, kpi in current_kpis(connection).items()}
    rows = []
    for row in current_values(connection):
        definition = definitions[row["name"]]
        band = None
        if row["period"] is not None:
            band = band_beside(bands, definition.name, definition.metric, row["period"])
        shown = _shown(row) | {"band": None if band is None else band.model_dump(mode="json")}
        rows.append(KpiCurrent.model_validate(shown))
    return rows


@router.get("/kpis/{name}/history", response_model=KpiHistory)
def kpi_history(
    _: ViewerCaller,
    connection: DbDep,
    name: KpiName,
    first: Annotated[
        str | None, Query(alias="from", pattern=PERIOD, description="First period, e.g. 2025-01")
    ] = None,
    to: Annotated[str | None, Query(pattern=PERIOD, description="Last period")] = None,
) -> KpiHistory:
    """The KPI's latest stored value for each period, with the period before, the same
    period a year before, and the goal its targets set."""
    try:
        rows = value_history(connection, name, first, to)
    except KeyError:
        raise NotFound(f"no KPI named {name!r}") from None
    return KpiHistory(name=name, rows=[KpiHistoryRow.model_validate(_shown(r)) for r in rows])


@router.post("/kpis/apply", response_model=ConfigApplied, response_model_exclude_none=True)
def apply(
    caller: ExecutiveCaller,
    connection: DbDep,
    state: ServerDep,
    request: Request,
    body: ConfigApply,
) -> ConfigApplied:
    """Make the KPIs, alert rules, escalation policies and channels match the sections given,
    as `execmetrics kpis apply` does: create the new ones, add a version to each changed one,
    and with `prune` remove those not given. Nothing is applied while any problem remains;
    the first is a 422 naming its place, such as `rules[2].condition.below`."""
    sections = body.model_dump(include={"kpis", "rules", "policies", "channels"})
    try:
        declared = declared_from_data(sections)
        diffs = apply_declared(
            connection, declared, caller.label, sealer(state.settings), body.prune,
            body.dry_run, state.settings.outbound_allow,
        )  # fmt: skip
    except ConfigError as error:
        where, _, reason = error.problems[0].partition(": ")
        raise InvalidParameter(where, reason or where) from None
    audit = request.state.audit
    audit.parameters |= {
        name: {"created": d.created, "changed": sorted(d.changed), "removed": d.removed}
        for name, d in diffs.items()
        if not d.empty
    }
    return ConfigApplied(
        **{name: _section(diff) for name, diff in diffs.items()}, dry_run=body.dry_run
    )


def _section(diff: Diff) -> SectionDiff:
    return SectionDiff(
        created=diff.created,
        changed={
            name: [FieldChange(field=c.field, before=c.before, after=c.after) for c in changes]
            for name, changes in diff.changed.items()
        },
        removed=diff.removed,
        unchanged=diff.unchanged,
    )


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """Exact values as six-decimal numbers, with the fraction beside the value itself."""
    shown = dict(row)
    for key in ("value", "goal", "previous", "year_ago"):
        if key in shown:
            shown[key] = _number(shown[key])
    shown["exact"] = None if row["value"] is None else str(row["value"])
    if row.get("evaluated_at") is not None:
        shown["evaluated_at"] = format_micros(row["evaluated_at"])
    return shown


def _number(value: Fraction | None) -> float | None:
    decimal = as_decimal(value)
    return None if decimal is None else float(decimal)
