"""Process settings, from the environment (prefix EXECMETRICS_) or a .env file."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_PATH = Path("var") / "execmetrics.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECMETRICS_", env_file=".env", extra="ignore")

    database_url: str = f"sqlite:///{DEFAULT_DATABASE_PATH}"


def get_settings() -> Settings:
    return Settings()
