"""The weighted churn risk score's weights: five components, configurable (docs/churn.md).

Kept apart from the models so that settings can check the weights without loading them.
"""

from __future__ import annotations

import re

COMPONENTS = ("login", "usage", "tickets", "contraction", "tenure")
DEFAULT_WEIGHTS = {"login": 30.0, "usage": 25.0, "tickets": 20.0, "contraction": 15.0,
                   "tenure": 10.0}  # fmt: skip
DEFAULT_WEIGHTS_TEXT = "login=30,usage=25,tickets=20,contraction=15,tenure=10"


class WeightsError(ValueError):
    """Weights that cannot be used; the message says which part and why."""


def parse_weights(text: str) -> dict[str, float]:
    """`login=30,usage=25,...`: the weighted score's weights (any not given are 0)."""
    weights = dict.fromkeys(COMPONENTS, 0.0)
    for part in text.split(","):
        match = re.fullmatch(r"\s*([a-z]+)\s*=\s*([0-9]+(?:\.[0-9]+)?)\s*", part)
        if match is None or match[1] not in weights:
            raise WeightsError(
                f"weights: expected name=number pairs of {', '.join(COMPONENTS)} separated by "
                f"commas, got {part.strip()!r}"
            )
        weights[match[1]] = float(match[2])
    if sum(weights.values()) <= 0:
        raise WeightsError("weights: at least one weight must be above 0")
    return weights
