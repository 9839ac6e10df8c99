"""Storing churn models and scores, and reading them back: every churn query in one place.

A fitted model is kept as a pickle in the company's own database, read back only from
there. Scores are kept for the runs of the last SCORE_DAYS days (at least the newest run),
so a customer's risk today can be set beside last month's; each run's summary stays.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from execmetrics.analytics.churn import ChurnModel, ChurnRisk
from execmetrics.store.tables import churn_models, churn_score_runs, churn_scores, customers

SCORE_DAYS = 35
# Why the API and the dashboard have no customer risk to show.
NO_SCORES_YET = (
    "no churn scores yet: the daily analytics job stores them (or run execmetrics churn score)"
)


@dataclass(frozen=True)
class StoredModel:
    version: int
    trained_at: int  # microseconds
    model: ChurnModel


def save_model(connection: Connection, model: ChurnModel, now: int) -> int:
    """Stores a trained model; returns its version."""
    result = connection.execute(
        insert(churn_models).values(
            trained_at=now,
            as_of=model.as_of,
            method=model.method,
            horizon_days=model.horizon_days,
            reason=model.reason,
            weights=model.weights,
            evaluation=model.evaluation,
            model=None
            if model.pipeline is None
            else pickle.dumps((model.pipeline, model.medians, model.modes)),
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def latest_model(connection: Connection, version: int | None = None) -> StoredModel | None:
    """The newest stored model, or the one of `version`."""
    m = churn_models.c
    query = select(churn_models).order_by(m.id.desc()).limit(1)
    if version is not None:
        query = select(churn_models).where(m.id == version)
    row = connection.execute(query).first()
    if row is None:
        return None
    pipeline, medians, modes = (None, {}, {}) if row.model is None else pickle.loads(row.model)
    model = ChurnModel(
        row.method, row.horizon_days, row.as_of, dict(row.weights), row.reason,
        dict(row.evaluation), pipeline, medians, modes,
    )  # fmt: skip
    return StoredModel(int(row.id), int(row.trained_at), model)


def save_scores(connection: Connection, version: int, risk: ChurnRisk, now: int) -> int:
    """Stores one scoring run; drops the scores of runs older than SCORE_DAYS."""
    mean = float(risk.probability.mean()) if len(risk.ids) else 0.0
    result = connection.execute(
        insert(churn_score_runs).values(
            model_id=version, as_of=risk.as_of, scored_at=now, customers=len(risk.ids),
            mean_probability=mean,
        )
    )  # fmt: skip
    assert result.inserted_primary_key is not None
    run = int(result.inserted_primary_key[0])
    rows = [
        {"run_id": run, "customer_key": int(key), "probability": float(probability),
         "mrr": int(mrr), "factors": factors}
        for key, probability, mrr, factors in zip(
            risk.keys.tolist(), risk.probability.tolist(), risk.mrr.tolist(), risk.factors,
            strict=True,
        )
    ]  # fmt: skip
    for start in range(0, len(rows), 5000):
        connection.execute(insert(churn_scores), rows[start : start + 5000])
    r = churn_score_runs.c
    stale = select(r.id).where(r.as_of < risk.as_of - timedelta(days=SCORE_DAYS), r.id != run)
    connection.execute(delete(churn_scores).where(churn_scores.c.run_id.in_(stale)))
    return run


def latest_run(connection: Connection) -> dict[str, Any] | None:
    r = churn_score_runs.c
    row = connection.execute(select(churn_score_runs).order_by(r.id.desc()).limit(1)).first()
    return None if row is None else dict(row._mapping)


def scored_on(connection: Connection, day: date) -> bool:
    r = churn_score_runs.c
    return connection.execute(select(r.id).where(r.as_of == day).limit(1)).first() is not None


def run_scores(
    connection: Connection, run_id: int, limit: int, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """The run's customers riskiest first: (how many in all, this page of them)."""
    s = churn_scores.c
    total = connection.execute(
        select(func.count()).select_from(churn_scores).where(s.run_id == run_id)
    ).scalar_one()
    rows = connection.execute(
        select(customers.c.customer_id, customers.c.name, s.probability, s.mrr, s.factors)
        .join(customers, customers.c.id == s.customer_key)
        .where(s.run_id == run_id)
        .order_by(s.probability.desc(), customers.c.customer_id)
        .limit(limit)
        .offset(offset)
    ).all()
    return int(total), [dict(row._mapping) for row in rows]
