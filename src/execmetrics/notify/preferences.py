"""Each user's notification preferences: how to reach them, their quiet hours and digest."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, func, select

from execmetrics.kpi.definitions import check_cron
from execmetrics.metrics.periods import PeriodError, time_zone
from execmetrics.notify.quiet_hours import QuietHours
from execmetrics.store.tables import user_preferences, users
from execmetrics.timeutil import now_micros

CHANNEL_NAME = r"^[a-z][a-z0-9_-]{0,63}$"
DEFAULT_DIGEST_SCHEDULE = "0 8 * * 1"  # Monday 08:00 in the user's time zone


class Digest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str = DEFAULT_DIGEST_SCHEDULE
    channel: Annotated[str, Field(pattern=CHANNEL_NAME)]  # an email or Slack channel

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        return check_cron(schedule)


class Preferences(BaseModel):
    """How a user is told. In-app notifications always reach them; `email_channel` and
    `sms_channel` name channels that also send to their own address and phone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = "UTC"
    email_channel: Annotated[str | None, Field(pattern=CHANNEL_NAME)] = None
    sms_channel: Annotated[str | None, Field(pattern=CHANNEL_NAME)] = None
    phone: Annotated[str | None, Field(pattern=r"^\+[1-9]\d{6,14}$")] = None
    quiet_hours: QuietHours | None = None
    digest: Digest | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            time_zone(name)
        except PeriodError:
            raise ValueError(f"unknown IANA time zone {name!r}") from None
        return name


def user_id(connection: Connection, email: str) -> int | None:
    found = connection.execute(
        select(users.c.id).where(func.lower(users.c.email) == email.lower())
    ).scalar()
    return None if found is None else int(found)


def preferences_of(connection: Connection, user: int) -> Preferences:
    stored = connection.execute(
        select(user_preferences.c.preferences).where(user_preferences.c.user_id == user)
    ).scalar()
    return Preferences() if stored is None else Preferences.model_validate(stored)


def all_preferences(connection: Connection) -> dict[str, Preferences]:
    """Every user's preferences, by email, for users who set any."""
    rows = connection.execute(
        select(users.c.email, user_preferences.c.preferences).join(
            user_preferences, user_preferences.c.user_id == users.c.id
        )
    )
    return {row.email.lower(): Preferences.model_validate(row.preferences) for row in rows}


def save_preferences(connection: Connection, user: int, preferences: Preferences) -> None:
    data: dict[str, Any] = preferences.model_dump(mode="json", exclude_none=True)
    p = user_preferences.c
    updated = connection.execute(
        user_preferences.update()
        .where(p.user_id == user)
        .values(preferences=data, updated_at=now_micros())
    ).rowcount
    if not updated:
        connection.execute(
            user_preferences.insert().values(
                user_id=user, preferences=data, updated_at=now_micros()
            )
        )
