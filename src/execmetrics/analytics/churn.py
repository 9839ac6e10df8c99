"""Churn risk of every paying customer: a model trained on the company's own history, or,
with too little of it, a transparent weighted risk score, each with its factors in words.

Training takes monthly snapshots of the churn features (analytics/churn_features.py), each
labelled by whether the customer churned within the horizon after it. The split is by time:
the newest snapshot whose horizon has fully passed is the test set, and the models learn from
the snapshots whose horizon ended before it, so no training label comes from the test period.
Logistic regression and gradient boosting (analytics/churn_model.py) are judged on the test
set beside the weighted score; the best model is kept only if it ranks the test customers
better than the weighted score (ROC AUC), and is then refitted on every labelled snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from execmetrics.analytics.churn_features import (
    CATEGORICAL,
    NEVER_DAYS,
    NUMERIC,
    ChurnFeatures,
    churn_features,
    churn_labels,
    first_activity_day,
)
from execmetrics.analytics.churn_model import MODELS, churn_pipeline, frame_of, scores_of
from execmetrics.analytics.churn_weights import COMPONENTS, DEFAULT_WEIGHTS
from execmetrics.analytics.feature_table import FeatureTable
from execmetrics.money import Money

DEFAULT_HORIZON_DAYS = 60
WEIGHTED = "weighted_score"
SNAPSHOT_DAYS = 30
MAX_SNAPSHOTS = 12
# Fewer churned customers than this in training (or in the test snapshot) is too little
# labelled history for a model: the weighted score is used, and says so.
MIN_TRAIN_CHURNED = 30
MIN_TEST_CHURNED = 10
TOP_FACTORS = 3
# Features read together as one factor (one phrase each).
GROUPS: dict[str, tuple[str, ...]] = {
    "login": ("logins_7d", "logins_30d", "logins_90d", "days_since_login", "login_trend"),
    "usage": ("usage_30d", "usage_trend", "feature_breadth_90d"),
    "tickets": ("tickets_90d", "open_tickets", "urgent_tickets_90d"),
    "contraction": ("contraction_90d",),
    "tenure": ("tenure_days",),
    "mrr": ("mrr",),
    "seats": ("seats",),
    "tier": ("tier",),
    "interval": ("interval",),
}

Vector = npt.NDArray[np.float64]


class ChurnError(ValueError):
    """Churn risk cannot be computed as asked; the message names the parameter or says why."""


@dataclass(frozen=True)
class WeightedRisk:
    score: Vector  # 0 to 1
    components: dict[str, Vector]  # each 0 to 1, before weighting


def weighted_risk(features: ChurnFeatures, weights: dict[str, float]) -> WeightedRisk:
    """The transparent score: each component from 0 (no sign of risk) to 1, weighted.

    login: logins down over 30 days against the 60 before, or days without one (0 within a
    week, 1 after 60 days), whichever is worse; usage: feature use down likewise; tickets:
    (tickets in 90 days + 2 per urgent or high one + open ones) / 6; contraction: twice the
    share of MRR lost to contraction in 90 days; tenure: 1 for a new customer, falling to 0
    at a year. Without any activity (or tickets) stored, those components weigh nothing.
    """
    column = features.column
    since = column("days_since_login")
    components = {
        "login": np.maximum(np.clip(-column("login_trend"), 0, 1), np.clip((since - 7) / 53, 0, 1)),
        "usage": np.where(
            (column("usage_30d") == 0) & (column("usage_trend") == 0),
            np.where(column("feature_breadth_90d") == 0, 1.0, 0.0),
            np.clip(-column("usage_trend"), 0, 1),
        ),
        "tickets": np.clip(
            (column("tickets_90d") + 2 * column("urgent_tickets_90d") + column("open_tickets")) / 6,
            0,
            1,
        ),
        "contraction": np.clip(
            2
            * column("contraction_90d")
            / np.maximum(column("mrr") + column("contraction_90d"), 1),
            0,
            1,
        ),
        "tenure": np.clip(1 - column("tenure_days") / 365, 0, 1),
    }
    used = dict(weights)
    if not features.has_activity:
        used["login"] = used["usage"] = 0.0
    if not features.has_tickets:
        used["tickets"] = 0.0
    total = sum(used.values()) or 1.0
    score = sum((used[name] / total) * value for name, value in components.items())
    return WeightedRisk(np.asarray(score, dtype=np.float64), components)


@dataclass
class ChurnModel:
    """A trained churn model (or the weighted score), with how it was judged."""

    method: str  # one of MODELS, or WEIGHTED
    horizon_days: int
    as_of: date  # the newest snapshot it learned from (or the date it was chosen)
    weights: dict[str, float]
    reason: str
    evaluation: dict[str, Any] = field(default_factory=dict)
    pipeline: Any = None  # the fitted scikit-learn pipeline of a model
    medians: dict[str, float] = field(default_factory=dict)  # of the training features
    modes: dict[str, str] = field(default_factory=dict)


# Gradient boosting's OpenMP threads spin while they wait for a core: on a busy two-core
# server (or beside the web workers) that made scoring ten times slower, so the models run
# on one thread.
ONE_THREAD: dict[str, Any] = {"limits": 1, "user_api": "openmp"}


def train_churn_model(
    connection: Any,
    as_of: date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    weights: dict[str, float] | None = None,
    seed: int = 0,
) -> ChurnModel:
    """Train on snapshots before `as_of` whose horizon has passed; see the module docstring."""
    with threadpool_limits(**ONE_THREAD):
        return _trained(connection, as_of, horizon_days, weights, seed)


def _trained(
    connection: Any,
    as_of: date,
    horizon_days: int,
    weights: dict[str, float] | None,
    seed: int,
) -> ChurnModel:
    if not 7 <= horizon_days <= 365:
        raise ChurnError(f"horizon: expected 7 to 365 days, got {horizon_days}")
    weights = weights or DEFAULT_WEIGHTS
    snapshots = _labelled_snapshots(connection, as_of, horizon_days)
    test = snapshots[0] if snapshots else None
    train = [s for s in snapshots if s[0].as_of + timedelta(days=horizon_days) <= (
        test[0].as_of if test else as_of)]  # fmt: skip
    train_churned = sum(int(labels.sum()) for _, labels in train)
    test_churned = int(test[1].sum()) if test else 0
    history = {
        "snapshots": [s.as_of.isoformat() for s, _ in snapshots],
        "test_snapshot": test[0].as_of.isoformat() if test else None,
        "train_rows": sum(len(s) for s, _ in train),
        "train_churned": train_churned,
        "test_rows": len(test[0]) if test else 0,
        "test_churned": test_churned,
    }
    if test is None or train_churned < MIN_TRAIN_CHURNED or test_churned < MIN_TEST_CHURNED:
        reason = (
            f"too little labelled history for a model ({train_churned} churned customers in "
            f"training and {test_churned} in the test snapshot; a model needs "
            f"{MIN_TRAIN_CHURNED} and {MIN_TEST_CHURNED}): the weighted risk score is used"
        )
        return ChurnModel(WEIGHTED, horizon_days, as_of, weights, reason, {"split": history})
    test_features, test_labels = test
    train_table = _stacked([s.table for s, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    judged: dict[str, dict[str, float]] = {}
    for model in MODELS:
        pipeline = _fitted(model, train_table, train_labels, seed)
        probability = pipeline.predict_proba(frame_of(test_features.table))[:, 1]
        judged[model] = vars(scores_of(test_labels, probability))
    baseline = weighted_risk(test_features, weights).score
    judged[WEIGHTED] = vars(scores_of(test_labels, baseline))
    best = max(MODELS, key=lambda name: judged[name]["roc_auc"])
    evaluation = {"split": history, "test": judged}
    if judged[best]["roc_auc"] <= judged[WEIGHTED]["roc_auc"]:
        reason = (
            f"the weighted risk score ranked the test snapshot's customers as well as or better "
            f"than {best} (ROC AUC {judged[WEIGHTED]['roc_auc']:.3f} against "
            f"{judged[best]['roc_auc']:.3f}): it is used"
        )
        return ChurnModel(WEIGHTED, horizon_days, as_of, weights, reason, evaluation)
    every = [*train, test]
    table = _stacked([s.table for s, _ in every])
    labels = np.concatenate([labels for _, labels in every])
    reason = (
        f"{best} ranked the test snapshot's customers better than the weighted risk score "
        f"(ROC AUC {judged[best]['roc_auc']:.3f} against {judged[WEIGHTED]['roc_auc']:.3f}); "
        f"refitted on all {len(every)} labelled snapshots"
    )
    return ChurnModel(
        best, horizon_days, test_features.as_of, weights, reason, evaluation,
        pipeline=_fitted(best, table, labels, seed),
        medians={name: float(np.nanmedian(values)) for name, values in table.numeric.items()},
        modes={name: _mode(values) for name, values in table.categorical.items()},
    )  # fmt: skip


def _labelled_snapshots(
    connection: Any, as_of: date, horizon_days: int
) -> list[tuple[ChurnFeatures, npt.NDArray[np.int_]]]:
    """Monthly snapshots, newest first, whose horizon ends by `as_of`, while they hold
    paying customers (and, once activity is stored, 90 days of it)."""
    snapshots: list[tuple[ChurnFeatures, npt.NDArray[np.int_]]] = []
    newest = as_of - timedelta(days=horizon_days)
    for k in range(MAX_SNAPSHOTS):
        day = newest - timedelta(days=SNAPSHOT_DAYS * k)
        features = churn_features(connection, day)
        if len(features) == 0 or (snapshots and snapshots[0][0].has_activity and not (
            features.has_activity and _activity_covers(connection, day))):  # fmt: skip
            break
        snapshots.append((features, churn_labels(connection, features.keys, day, horizon_days)))
    return snapshots


def _activity_covers(connection: Any, day: date) -> bool:
    """Activity stored from at least 90 days before `day`: a full window for the features."""
    first = first_activity_day(connection)
    return first is not None and first <= day - timedelta(days=90)


def _stacked(tables: list[FeatureTable]) -> FeatureTable:
    return FeatureTable(
        [i for table in tables for i in table.ids],
        {name: np.concatenate([t.numeric[name] for t in tables]) for name in NUMERIC},
        {name: [v for t in tables for v in t.categorical[name]] for name in CATEGORICAL},
        None,
    )


def _fitted(model: str, table: FeatureTable, labels: npt.NDArray[np.int_], seed: int) -> Any:
    pipeline = churn_pipeline(model, list(NUMERIC), list(CATEGORICAL), len(labels), seed)
    pipeline.fit(frame_of(table), labels)
    return pipeline


def _mode(values: list[str]) -> str:
    names, counts = np.unique(np.array(values), return_counts=True)
    return str(names[int(np.argmax(counts))])


@dataclass(frozen=True)
class ChurnRisk:
    as_of: date
    method: str
    keys: npt.NDArray[np.int64]
    ids: list[str]
    probability: Vector  # for the weighted score: the score from 0 to 1
    factors: list[list[str]]
    mrr: Vector


def score_customers(connection: Any, model: ChurnModel, as_of: date, currency: str) -> ChurnRisk:
    """Every paying customer's risk as of `as_of`, with its top factors in words."""
    return score_features(model, churn_features(connection, as_of), currency)


def score_features(model: ChurnModel, features: ChurnFeatures, currency: str) -> ChurnRisk:
    """The risk of every customer in features already read, with its top factors in words."""
    as_of = features.as_of
    if len(features) == 0:
        return ChurnRisk(as_of, model.method, features.keys, [], np.zeros(0), [], np.zeros(0))
    if model.method == WEIGHTED:
        risk = weighted_risk(features, model.weights)
        probability = risk.score
        raised = {name: risk.components[name] * model.weights.get(name, 0.0)
                  for name in COMPONENTS}  # fmt: skip
    else:
        with threadpool_limits(**ONE_THREAD):
            probability = model.pipeline.predict_proba(frame_of(features.table))[:, 1]
            raised = _attribution(model, features)
    factors = _factors(features, raised, currency)
    return ChurnRisk(as_of, model.method, features.keys, features.table.ids, probability,
                     factors, features.column("mrr"))  # fmt: skip


def _attribution(model: ChurnModel, features: ChurnFeatures) -> dict[str, Vector]:
    """How much each group of features raises a customer's score: the drop when the group
    takes the training data's typical values (medians; the commonest category).

    Judged on one fold's fitted pipeline before calibration: calibration maps scores
    monotonically, so it keeps which group matters most, at a third of the cost. The
    features are prepared once; each group only swaps its prepared columns.
    """
    fitted = model.pipeline.calibrated_classifiers_[0].estimator
    prepare, estimator = fitted.named_steps["prepare"], fitted.named_steps["model"]
    prepared = prepare.transform(frame_of(features.table))
    typical = frame_of(features.table).iloc[:1].copy()
    for name in NUMERIC:
        typical[name] = model.medians[name]
    for name in CATEGORICAL:
        typical[name] = model.modes[name]
    typical_row = prepare.transform(typical)[0]
    names = list(prepare.get_feature_names_out())
    score = estimator.predict_proba(prepared)[:, 1]
    raised: dict[str, Vector] = {}
    for group, members in GROUPS.items():
        columns = [i for i, column in enumerate(names) if _prepared_from(column, members)]
        swapped = prepared.copy()
        swapped[:, columns] = typical_row[columns]
        raised[group] = score - estimator.predict_proba(swapped)[:, 1]
    return raised


def _prepared_from(column: str, features: tuple[str, ...]) -> bool:
    """Whether a prepared column (`numbers__mrr`, `categories__tier_Starter`) comes from one
    of the features."""
    kind, _, rest = column.partition("__")
    if kind == "numbers":
        return rest in features
    return any(rest.startswith(f"{name}_") for name in features)


def _factors(features: ChurnFeatures, raised: dict[str, Vector], currency: str) -> list[list[str]]:
    groups = list(raised)
    matrix = np.stack([raised[name] for name in groups], axis=1)
    order = np.argsort(-matrix, axis=1, kind="stable")
    numeric, categorical = features.table.numeric, features.table.categorical
    result: list[list[str]] = []
    for n in range(len(features)):
        phrases: list[str] = []
        for g in order[n].tolist():
            if matrix[n, g] <= 0.005 or len(phrases) == TOP_FACTORS:
                break
            values = {name: column[n] for name, column in numeric.items()}
            kinds = {name: column[n] for name, column in categorical.items()}
            phrase = factor_phrase(groups[g], values, kinds, currency)
            if phrase is not None:
                phrases.append(phrase)
        result.append(phrases)
    return result


def factor_phrase(
    group: str, numeric: dict[str, Any], categorical: dict[str, str], currency: str
) -> str | None:
    """One factor of a customer's risk in words, from its feature values; None when the
    values show nothing a person would call a warning sign."""
    if group == "login":
        since = int(numeric["days_since_login"])
        if since >= NEVER_DAYS:
            return "no login in the last year"
        if numeric["login_trend"] <= -0.2:
            return f"logins down {round(-100 * numeric['login_trend'])}% over 30 days"
        return f"no login for {since} days" if since > 7 else None
    if group == "usage":
        if numeric["usage_trend"] <= -0.2:
            return f"usage down {round(-100 * numeric['usage_trend'])}% over 30 days"
        return "no feature use in 30 days" if numeric["usage_30d"] == 0 else None
    if group == "tickets":
        urgent = int(numeric["urgent_tickets_90d"])
        opened, still_open = int(numeric["tickets_90d"]), int(numeric["open_tickets"])
        if urgent:
            return f"{urgent} urgent or high-priority ticket{'s' * (urgent != 1)} in 90 days"
        if still_open:
            return f"{still_open} open ticket{'s' * (still_open != 1)}"
        return f"{opened} tickets in 90 days" if opened > 1 else None
    if group == "contraction":
        if not numeric["contraction_90d"]:
            return None
        lost = Money(int(numeric["contraction_90d"]), currency).format(whole=True)
        return f"MRR down {lost} in 90 days"
    if group == "tenure":
        return f"customer for {int(numeric['tenure_days'])} days"
    if group == "mrr":
        return f"MRR {Money(int(numeric['mrr']), currency).format(whole=True)}"
    if group == "seats":
        seats = int(numeric["seats"])
        return f"{seats} seat{'s' * (seats != 1)}"
    if group == "tier":
        return f"on the {categorical['tier']} plan"
    return (
        "billed monthly"
        if categorical["interval"] == "month"
        else f"billed per {categorical['interval']}"
    )
