"""The churn models (scikit-learn) and how they are judged.

Two candidates share one preparation of the features (numeric: median for blanks, then
standardised; categories: one column per value): a regularised logistic regression, its
penalty chosen by an inner cross-validation on ROC AUC, and gradient boosting on histograms.
Each is calibrated (isotonic regression on held-out folds, or Platt's sigmoid on small
data) so that its scores are probabilities. A model is judged by ROC AUC (ranking), PR AUC
(average precision: ranking the churners at the top) and the Brier score (the mean squared
error of the probabilities).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from execmetrics.analytics.feature_table import FeatureTable

MODELS = ("logistic_regression", "gradient_boosting")
# Isotonic calibration needs enough held-out rows per fold to be smooth.
ISOTONIC_MIN_ROWS = 1000
CALIBRATION_FOLDS = 3
MIN_PER_CLASS = 10


class ChurnModelError(ValueError):
    """Data a churn model cannot be trained or judged on; the message says why."""


@dataclass(frozen=True)
class Scores:
    roc_auc: float
    pr_auc: float
    brier: float


@dataclass(frozen=True)
class ModelEvaluation:
    model: str
    folds: list[Scores]

    def mean(self, name: str) -> float:
        return statistics.fmean(getattr(fold, name) for fold in self.folds)

    def spread(self, name: str) -> float:
        return statistics.stdev(float(getattr(fold, name)) for fold in self.folds)


@dataclass(frozen=True)
class Evaluation:
    rows: int
    churned: int
    folds: int
    numeric: list[str]
    categorical: list[str]
    models: dict[str, ModelEvaluation]

    @property
    def chosen(self) -> str:
        """The model with the highest mean ROC AUC; on a tie, the simpler (listed first)."""
        ranked = sorted(MODELS, key=lambda name: -self.models[name].mean("roc_auc"))
        return ranked[0]  # sorted() is stable: a tie keeps the order of MODELS


def frame_of(table: FeatureTable) -> pd.DataFrame:
    columns: dict[str, Any] = dict(table.numeric)
    columns.update(table.categorical)
    return pd.DataFrame(columns)


def churn_pipeline(model: str, numeric: list[str], categorical: list[str], rows: int,
                   seed: int) -> CalibratedClassifierCV:  # fmt: skip
    """The calibrated pipeline of one model for a table with these columns and rows."""
    prepare = ColumnTransformer(
        [
            ("numbers", Pipeline([("blanks", SimpleImputer(strategy="median")),
                                  ("scale", StandardScaler())]), numeric),
            ("categories", OneHotEncoder(handle_unknown="ignore", min_frequency=5), categorical),
        ],
        sparse_threshold=0.0,
    )  # fmt: skip
    estimator: Any
    if model == "logistic_regression":
        estimator = LogisticRegressionCV(
            Cs=10,
            l1_ratios=(0.0,),
            cv=3,
            scoring="roc_auc",
            max_iter=2000,
            use_legacy_attributes=False,
            random_state=seed,
        )
    elif model == "gradient_boosting":
        estimator = HistGradientBoostingClassifier(
            learning_rate=0.05, max_iter=300, max_leaf_nodes=15, l2_regularization=1.0,
            early_stopping=True, validation_fraction=0.15, random_state=seed,
        )  # fmt: skip
    else:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    method = "isotonic" if rows >= ISOTONIC_MIN_ROWS else "sigmoid"
    return CalibratedClassifierCV(
        Pipeline([("prepare", prepare), ("model", estimator)]),
        method=method,
        cv=CALIBRATION_FOLDS,
    )


def scores_of(label: Any, probability: Any) -> Scores:
    return Scores(
        roc_auc=float(roc_auc_score(label, probability)),
        pr_auc=float(average_precision_score(label, probability)),
        brier=float(brier_score_loss(label, probability)),
    )


def cross_validate(table: FeatureTable, folds: int = 5, seed: int = 0) -> Evaluation:
    """Each model's scores on each of `folds` stratified folds, trained on the others."""
    # One thread: gradient boosting's OpenMP threads spin while they wait for a busy core.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _cross_validated(table, folds, seed)


def _cross_validated(table: FeatureTable, folds: int, seed: int) -> Evaluation:
    if table.label is None:
        raise ChurnModelError("the table has no label column")
    label = table.label
    counts = np.bincount(label, minlength=2)
    if folds < 2:
        raise ChurnModelError(f"folds: expected 2 or more, got {folds}")
    if counts.min() < max(MIN_PER_CLASS, folds):
        raise ChurnModelError(
            f"the table has {counts[1]} churned and {counts[0]} retained rows; each needs at "
            f"least {max(MIN_PER_CLASS, folds)} for {folds}-fold cross-validation"
        )
    frame = frame_of(table)
    numeric, categorical = list(table.numeric), list(table.categorical)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    results: dict[str, list[Scores]] = {model: [] for model in MODELS}
    for train, test in splitter.split(frame, label):
        for model in MODELS:
            pipeline = churn_pipeline(model, numeric, categorical, len(train), seed)
            pipeline.fit(frame.iloc[train], label[train])
            probability = pipeline.predict_proba(frame.iloc[test])[:, 1]
            results[model].append(scores_of(label[test], probability))
    return Evaluation(
        rows=len(table),
        churned=int(counts[1]),
        folds=folds,
        numeric=numeric,
        categorical=categorical,
        models={model: ModelEvaluation(model, scores) for model, scores in results.items()},
    )


def evaluation_document(evaluation: Evaluation) -> dict[str, Any]:
    def figure(value: float) -> float:
        return round(value, 4)

    return {
        "rows": evaluation.rows,
        "churned": evaluation.churned,
        "folds": evaluation.folds,
        "features": {"numeric": evaluation.numeric, "categorical": evaluation.categorical},
        "models": {
            name: {metric: figure(result.mean(metric)) for metric in ("roc_auc", "pr_auc", "brier")}
            | {
                "roc_auc_spread": figure(result.spread("roc_auc")),
                "roc_auc_folds": [figure(fold.roc_auc) for fold in result.folds],
            }
            for name, result in evaluation.models.items()
        },
        "chosen": evaluation.chosen,
    }
