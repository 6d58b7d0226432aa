"""Liveness, readiness and Prometheus metrics (no authentication: for the platform)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from operator_data.api.deps import Ctx
from operator_data.api.metrics import export_store_health, refresh
from operator_data.store import StoreError
from operator_data.store_health import check_ready

router = APIRouter(tags=["health"])
log = logging.getLogger("operator_data.api.health")


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="The database takes writes and the hub's work moves", responses={503: {}}
)
async def readyz(ctx: Ctx, request: Request, response: Response) -> dict[str, str]:
    """503 with a `reason` when a small write does not go through in time (a lock held,
    a server refusing writes) or, in the hub's app, when the oldest unprocessed inbound
    SMS or the most overdue outbox row is older than the settings allow."""
    hub = getattr(request.app.state, "pintar_hub", None)
    readiness = await check_ready(
        ctx.store, ctx.settings.database, ctx.clock(), check_work=hub is not None
    )
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness.body()


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(ctx: Ctx) -> Response:
    export_store_health(ctx)
    try:
        await refresh(ctx)
    except (SQLAlchemyError, StoreError, OSError) as error:
        # The store's own gauges (pintar_store_up 0) still reach Prometheus; the gauges
        # read from the database keep their last values.
        log.warning("metrics: the database gauges were not refreshed: %s", type(error).__name__)
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
