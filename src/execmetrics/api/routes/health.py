"""Liveness and readiness: no authentication, no data."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from execmetrics.api.deps import ServerDep
from execmetrics.api.problems import PROBLEM_RESPONSES
from execmetrics.api.schemas import Health
from execmetrics.errors import Unavailable

router = APIRouter(tags=["health"], responses=PROBLEM_RESPONSES)


@router.get("/healthz")
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"description": "The database cannot be reached"}})
def readyz(state: ServerDep) -> Health:
    """The database answers."""
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        raise Unavailable("the database cannot be reached") from None
    return Health(status="ok")
