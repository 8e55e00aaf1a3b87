"""Creating the tables is idempotent and safe when many processes start at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from composition.services import Services
from composition.settings import Settings


def test_many_services_creating_tables_at_once_all_succeed(database_url: str) -> None:
    def start(_: int) -> int:
        services = Services(Settings(database_url=database_url))
        try:
            return len(services.projector.positions())
        finally:
            services.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(start, range(8)))
    assert len(set(counts)) == 1
    again = Services(Settings(database_url=database_url))
    try:
        assert again.accounts.ensure_default_project() is not None
        assert again.accounts.ensure_default_project() is None
    finally:
        again.close()


def test_the_services_of_a_worker_create_no_tables(database_url: str) -> None:
    Services(Settings(database_url=database_url)).close()
    worker = Services(Settings(database_url=database_url), create_tables=False)
    try:
        assert worker.workflows.recorder.max_notification_id() in (None, 0)
    finally:
        worker.close()
