"""Builds one process's services: the application service, its read models, accounts and cursors."""

from __future__ import annotations

import logging

from composition.settings import Settings
from domain.runs import RunService
from projections.analytics import AnalyticsProjection
from projections.analytics_queries import Analytics
from projections.audit import AuditProjection
from projections.audit_queries import AuditLog
from projections.erasure import ErasureProjection
from projections.leadership import ProjectionLeadership
from projections.projector import BackgroundCatchUp, Projector
from projections.related import RelatedProjection
from projections.related_queries import Related
from projections.runs import RunsProjection
from projections.runs_queries import Runs
from projections.workflow_summary import WorkflowSummaryProjection
from projections.workflow_summary_queries import WorkflowSummaries
from projections.workflow_versions import VersionHistory, WorkflowVersionsProjection
from store.accounts import ACCOUNTS_DDL, Accounts, add_missing_key_columns
from store.database import StoreConfig
from store.files import FILES_DDL, Files
from store.idempotency import IDEMPOTENCY_DDL
from store.key_encryption import resolve_master_key
from store.sealing import DATA_KEYS_DDL
from store.secrets import SECRETS_DDL, cursor_secret
from store.workflow_store import StoredWorkflowService

log = logging.getLogger(__name__)

VISIBLE_WAIT_SECONDS = 1.0
"""How long a write waits for the projection leader to apply it before its process catches up itself."""


class Services:
    """Everything the API and the CLI need, over one store."""

    def __init__(self, settings: Settings, *, create_tables: bool = True) -> None:
        self.settings = settings
        self._follower: ProjectionLeadership | BackgroundCatchUp | None = None
        config = StoreConfig.from_url(settings.database_url, pool_size=settings.pool_size)
        master_key = resolve_master_key(
            value=settings.master_key,
            file=settings.master_key_file,
            sqlite_path=config.env["SQLITE_DBNAME"] if config.dialect == "sqlite" else None,
        )
        self.workflows = StoredWorkflowService(
            {**config.env, "CREATE_TABLE": "n", **master_key.to_env()}, config.dialect
        )
        self.database = self.workflows.database
        self.accounts = Accounts(self.database)
        self.projector = Projector(
            self.workflows,
            self.database,
            [
                WorkflowSummaryProjection(),
                WorkflowVersionsProjection(),
                ErasureProjection(self.database),
                RunsProjection(),
                AnalyticsProjection(),
                RelatedProjection(),
                AuditProjection(),
            ],
        )
        self.summaries = WorkflowSummaries(self.database)
        self.history = VersionHistory(self.database)
        self.runs = RunService(self.workflows)
        self.runs_view = Runs(self.database)
        self.analytics = Analytics(self.database)
        self.related = Related(self.database)
        self.audit = AuditLog(self.database)
        self.files = Files(self.database, settings.files_dir)
        if create_tables:
            self.create_tables()
        else:
            self.workflows.data_keys.check_master_key()
        self.cursor_secret = cursor_secret(self.database)

    def create_tables(self) -> None:
        """Idempotent: safe on every start, serialised between processes on PostgreSQL."""
        with self.database.schema_lock():
            self.workflows.create_event_tables()
            self.database.run_ddl([*DATA_KEYS_DDL, *ACCOUNTS_DDL, *SECRETS_DDL, *FILES_DDL, *IDEMPOTENCY_DDL])
            add_missing_key_columns(self.database)
            self.projector.create_tables()
            self.workflows.data_keys.check_master_key()
            self.workflows.data_keys.wrap_plain_keys()
            cursor_secret(self.database)  # made once, under the lock; every start then only reads it

    def make_visible(self, position: int | None) -> None:
        """Return once every read model reflects the write that ended at `position`.

        The write is stored by now, so a failure here is logged, never answered: a 5xx would make
        the client retry a write that happened. The background follower catches up later.
        On PostgreSQL a process that does not lead waits for the leader to announce the position
        (no two processes race for the same batch); the leader's own requests apply it at once.
        """
        if position is None:
            return
        leadership = self._follower if isinstance(self._follower, ProjectionLeadership) else None
        try:
            if leadership is not None and not leadership.leading:
                if leadership.wait_until_applied(position, VISIBLE_WAIT_SECONDS):
                    return
                log.warning(
                    "the projection leader has not applied position %d after %.1f s; catching up here",
                    position,
                    VISIBLE_WAIT_SECONDS,
                )
            self.projector.catch_up(position)
        except Exception:
            log.exception("read models could not catch up to stored position %d; will retry", position)

    def start_following(self) -> None:
        """Keep the read models following every writer: one leader among all processes on PostgreSQL,
        a poll on SQLite (one process). Until started, `make_visible` catches up in the calling thread."""
        if self._follower is not None:
            return
        if self.database.dialect == "postgres":
            channel = self.workflows.recorder.channel_name  # type: ignore[attr-defined]
            self._follower = ProjectionLeadership(self.projector, self.settings.database_url, channel)
        else:
            self._follower = BackgroundCatchUp(self.projector)
        self._follower.start()

    def stop_following(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.stop()

    @property
    def is_projection_leader(self) -> bool:
        """Whether this process applies new events to the read models now (PostgreSQL only)."""
        return self.projector.leading

    def close(self) -> None:
        self.stop_following()
        self.accounts.flush_uses()
        self.workflows.close()
