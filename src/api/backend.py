"""Builds one process's backend: the application service, its read models, accounts and cursors."""

from __future__ import annotations

from api.pagination import SECRETS_DDL, Cursors, cursor_secret
from api.settings import Settings
from domain.accounts import ACCOUNTS_DDL, Accounts
from domain.database import StoreConfig
from domain.files import FILES_DDL, Files
from domain.runs import RunService
from domain.sealing import DATA_KEYS_DDL
from domain.service import WorkflowService
from projections.analytics import Analytics, AnalyticsProjection
from projections.erasure import ErasureProjection
from projections.related import Related, RelatedProjection
from projections.runner import Projector
from projections.runs import Runs, RunsProjection
from projections.workflow_summary import WorkflowSummaries, WorkflowSummaryProjection
from projections.workflow_versions import VersionHistory, WorkflowVersionsProjection


class Backend:
    """Everything the API and the CLI need, over one store."""

    def __init__(self, settings: Settings, *, create_tables: bool = True) -> None:
        config = StoreConfig.from_url(settings.database_url, pool_size=settings.pool_size)
        self.workflows = WorkflowService({**config.env, "CREATE_TABLE": "n"}, config.dialect)
        self.database = self.workflows.database
        self.accounts = Accounts(self.database)
        self.projector = Projector(
            self.workflows,
            self.database,
            [
                WorkflowSummaryProjection(),
                WorkflowVersionsProjection(),
                ErasureProjection(),
                RunsProjection(),
                AnalyticsProjection(),
                RelatedProjection(),
            ],
        )
        self.summaries = WorkflowSummaries(self.database)
        self.history = VersionHistory(self.database)
        self.runs = RunService(self.workflows)
        self.runs_view = Runs(self.database)
        self.analytics = Analytics(self.database)
        self.related = Related(self.database)
        self.files = Files(self.database, settings.files_dir)
        if create_tables:
            self.create_tables()
        self.cursors = Cursors(cursor_secret(self.database))

    def create_tables(self) -> None:
        """Idempotent: safe on every start, serialised between processes on PostgreSQL."""
        with self.database.schema_lock():
            self.workflows.create_event_tables()
            self.database.run_ddl([*DATA_KEYS_DDL, *ACCOUNTS_DDL, *SECRETS_DDL, *FILES_DDL])
            self.projector.create_tables()

    def settle(self, position: int | None) -> None:
        """Return once every read model reflects the write that ended at `position`."""
        if position is not None:
            self.projector.catch_up(position)

    def close(self) -> None:
        self.workflows.close()
