"""Process settings, from the environment (prefix EXECMETRICS_) or a .env file.

Every setting is documented in docs/configuration.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS_TEXT, parse_weights

DEFAULT_DATABASE_PATH = Path("var") / "execmetrics.db"
DEVELOPMENT_SECRET = "development-only-secret-change-me"


class SettingsError(ValueError):
    """Settings that must not be used to serve (for example a default secret in production)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECMETRICS_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = f"sqlite:///{DEFAULT_DATABASE_PATH}"
    redis_url: str | None = None
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)

    # Requests per hour and identity, by role.
    rate_limit_viewer: Annotated[int, Field(ge=1)] = 100
    rate_limit_analyst: Annotated[int, Field(ge=1)] = 100
    rate_limit_executive: Annotated[int, Field(ge=1)] = 100
    rate_limit_admin: Annotated[int, Field(ge=1)] = 1000
    signin_attempts_per_account: Annotated[int, Field(ge=1)] = 5
    signin_attempts_per_client: Annotated[int, Field(ge=1)] = 20
    signin_window_seconds: Annotated[int, Field(ge=1)] = 900

    session_hours: Annotated[int, Field(ge=1)] = 12
    max_body_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    cors_origins: Annotated[list[str], NoDecode] = []
    trusted_proxies: str = "127.0.0.1"

    # Keep every activity event's row, not only the daily counts (docs/data-format.md).
    keep_activity_rows: bool = False
    # Churn risk (docs/churn.md).
    churn_horizon_days: Annotated[int, Field(ge=7, le=365)] = 60
    churn_weights: str = DEFAULT_WEIGHTS_TEXT

    # Alerting and notifications (docs/alerts.md, docs/notifications.md).
    public_url: str = "http://127.0.0.1:8000"
    time_zone: str = "UTC"
    scheduler: bool = True
    scheduler_tick_seconds: Annotated[float, Field(ge=1, le=3600)] = 15.0
    outbound_allow: Annotated[list[str], NoDecode] = []
    benchmarks_file: Path | None = None

    jwt_secret: SecretStr | None = None
    jwt_jwks_file: Path | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_role_claim: str = "execmetrics_role"

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, values: dict[str, object]) -> dict[str, object]:
        for name in ("cors_origins", "outbound_allow"):
            listed = values.get(name)
            if isinstance(listed, str):
                values[name] = [item.strip() for item in listed.split(",") if item.strip()]
        return values

    @field_validator("outbound_allow")
    @classmethod
    def _allow_list(cls, entries: list[str]) -> list[str]:
        from execmetrics.notify.urls import parse_allow_list

        return list(parse_allow_list(",".join(entries)))

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, name: str) -> str:
        from execmetrics.metrics.periods import PeriodError, time_zone

        try:
            time_zone(name)
        except PeriodError:
            raise ValueError(f"unknown IANA time zone {name!r}") from None
        return name

    @field_validator("churn_weights")
    @classmethod
    def _weights(cls, text: str) -> str:
        parse_weights(text)  # WeightsError is a ValueError: pydantic reports it
        return text

    def weights(self) -> dict[str, float]:
        return parse_weights(self.churn_weights)

    def rate_limit(self, role: str) -> int:
        return int(getattr(self, f"rate_limit_{role}"))

    def check_for_serving(self) -> None:
        """Refuse to serve outside development with a default or weak secret."""
        if self.environment == "development":
            return
        secret = self.secret_key.get_secret_value()
        if secret == DEVELOPMENT_SECRET or len(secret) < 32:
            raise SettingsError(
                "EXECMETRICS_SECRET_KEY: set a random secret of at least 32 characters "
                "outside development"
            )
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value()) < 32:
            raise SettingsError("EXECMETRICS_JWT_SECRET: at least 32 characters are required")


def get_settings() -> Settings:
    return Settings()
