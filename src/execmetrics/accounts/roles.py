"""Roles, least to most privileged; each includes what the ones before it may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # the summary only
    ANALYST = "analyst"  # all metrics and cohorts, no customer-level rows
    EXECUTIVE = "executive"  # everything financial, customer-level data included
    ADMIN = "admin"  # also users, tokens, settings and the audit trail

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


ROLE_NAMES = tuple(role.value for role in Role)


def parse_role(value: str, parameter: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValueError(
            f"{parameter}: expected one of {', '.join(ROLE_NAMES)}, got {value!r}"
        ) from None
