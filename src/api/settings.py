"""Process settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from domain.database import DEFAULT_DATABASE_URL

MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What a deployment can configure; every field has a default that runs on a fresh machine."""

    database_url: str = DEFAULT_DATABASE_URL
    pool_size: int = 10
    files_dir: Path = Path("files")
    """Where uploaded files are kept (content-addressed); relative paths are from the working dir."""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            pool_size=int(os.environ.get("WFS_POOL_SIZE", "10")),
            files_dir=Path(os.environ.get("WFS_FILES_DIR", "files")),
        )
