"""The Analytics and Related tabs of a workflow: reads of their pre-aggregated read models."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.dependencies import PRINCIPAL, PrincipalDep, from_services
from api.params import WorkflowId
from api.routes import read
from domain.errors import NotFound
from projections.analytics_buckets import MAX_DAYS, MIN_DAYS, Granularity
from projections.analytics_queries import Analytics, RunStatistics
from projections.related_queries import Related, RelatedEntities
from projections.workflow_summary_queries import WorkflowSummaries

Days = Annotated[
    int,
    QueryParameter(ge=MIN_DAYS, le=MAX_DAYS, description="How many UTC days, today included, 1 to 366"),
]
GranularityParam = Annotated[
    Granularity, QueryParameter(description="Bucket size: `daily`, `weekly` (ISO, Monday) or `monthly`")
]


def check_workflow(summaries: WorkflowSummaries, project_id: str, workflow_id: str) -> None:
    """An unknown, erased or other project's workflow is 404, as on every route."""
    if summaries.get(project_id, workflow_id) is None:
        raise NotFound(f"no workflow has id {workflow_id!r}")


class WorkflowAnalyticsController(Controller):
    """Run statistics of one workflow; every answer costs O(days), whatever the number of runs."""

    path = "/workflows"
    tags = ["workflows"]
    dependencies = {
        "principal": PRINCIPAL,
        "summaries": from_services(lambda services: services.summaries),
        "analytics": from_services(lambda services: services.analytics),
        "related": from_services(lambda services: services.related),
    }

    @read(
        "/analytics",
        "Run statistics of a workflow over recent days",
        description=(
            "Runs created in the window, by their current status, summed per bucket. "
            "`p95DurationMs` comes from a log-scale histogram: never below the exact nearest-rank "
            "p95 and at most 4.4 % above it. `avgCostUsd`, `avgDurationMs` and `p95DurationMs` are over "
            "finished runs; `related` counts every entity the workflow's runs ever linked."
        ),
    )
    def get_workflow_analytics(
        self,
        summaries: NamedDependency[WorkflowSummaries],
        analytics: NamedDependency[Analytics],
        related: NamedDependency[Related],
        principal: PrincipalDep,
        id: WorkflowId,
        days: Days = 30,
        granularity: GranularityParam = "daily",
    ) -> RunStatistics:
        check_workflow(summaries, principal.project_id, id)
        return analytics.run_statistics(id, days, granularity, related.counts(id))

    @read("/related", "Personas, issues and learning versions a workflow's runs used")
    def get_workflow_related(
        self,
        summaries: NamedDependency[WorkflowSummaries],
        related: NamedDependency[Related],
        principal: PrincipalDep,
        id: WorkflowId,
    ) -> RelatedEntities:
        check_workflow(summaries, principal.project_id, id)
        return related.entities(id)
