"""The Analytics and Related tabs of a workflow: reads of their pre-aggregated read models."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from api.auth import PrincipalDep, ServicesDep
from api.errors import READ_ERRORS
from api.params import WorkflowId
from domain.errors import NotFound
from projections.analytics_buckets import MAX_DAYS, MIN_DAYS, Granularity
from projections.analytics_queries import AnalyticsAnswer
from projections.related import RelatedAnswer

Days = Annotated[
    int,
    QueryParameter(ge=MIN_DAYS, le=MAX_DAYS, description="How many UTC days, today included, 1 to 366"),
]
GranularityParam = Annotated[
    Granularity, QueryParameter(description="Bucket size: `daily`, `weekly` (ISO, Monday) or `monthly`")
]


def check_workflow(backend: ServicesDep, project_id: str, workflow_id: str) -> None:
    """An unknown, erased or other project's workflow is 404, as on every route."""
    if backend.summaries.get(project_id, workflow_id) is None:
        raise NotFound(f"no workflow has id {workflow_id!r}")


class WorkflowAnalyticsController(Controller):
    """Run statistics of one workflow; every answer costs O(days), whatever the number of runs."""

    path = "/workflows"
    tags = ["workflows"]

    @get(
        "/analytics",
        sync_to_thread=True,
        responses=READ_ERRORS,
        summary="Run statistics of a workflow over recent days",
        description=(
            "Runs created in the window, by their current status, summed per bucket. "
            "`p95DurationMs` comes from a log-scale histogram: never below the exact nearest-rank "
            "p95 and at most 4.4 % above it. `avgCostUsd`, `avgDurationMs` and `p95DurationMs` are over "
            "finished runs; `related` counts every entity the workflow's runs ever linked."
        ),
    )
    def get_workflow_analytics(
        self,
        backend: ServicesDep,
        principal: PrincipalDep,
        id: WorkflowId,
        days: Days = 30,
        granularity: GranularityParam = "daily",
    ) -> AnalyticsAnswer:
        check_workflow(backend, principal.project_id, id)
        return backend.analytics.answer(id, days, granularity, backend.related.counts(id))

    @get(
        "/related",
        sync_to_thread=True,
        responses=READ_ERRORS,
        summary="Personas, issues and learning versions a workflow's runs used",
    )
    def get_workflow_related(
        self, backend: ServicesDep, principal: PrincipalDep, id: WorkflowId
    ) -> RelatedAnswer:
        check_workflow(backend, principal.project_id, id)
        return backend.related.answer(id)
