"""Process settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from store.database import DEFAULT_DATABASE_URL

MAX_BODY_BYTES = 2 * 1024 * 1024
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
BIND_HOST_VARIABLE = "WFS_BIND_HOST"
"""Set by `serve` for its workers: the address it was told to bind, a Host value allowed by default."""
DEFAULT_RATE_LIMIT = 1200


@dataclass(frozen=True)
class Settings:
    """What a deployment can configure; every field has a default that runs on a fresh machine."""

    database_url: str = DEFAULT_DATABASE_URL
    pool_size: int = 10
    files_dir: Path = Path("files")
    """Where uploaded files are kept (content-addressed); relative paths are from the working dir."""
    master_key: str | None = field(
        default_factory=lambda: os.environ.get("WFS_MASTER_KEY") or None, repr=False
    )
    """The key-encryption key (64 hex digits or base64 of 32 bytes) that wraps every data key.
    Read from the environment even when Settings are built in code, since it is never a literal."""
    master_key_file: Path | None = field(default_factory=lambda: _optional_path("WFS_MASTER_KEY_FILE"))
    """A file holding the master key instead; with neither, SQLite uses `<database file>.key`."""
    rate_limit: int = DEFAULT_RATE_LIMIT
    """Requests per minute per API key (per server process); 0 turns the limit off."""
    public_url: str | None = None
    """The base of upload URLs (`https://api.example.com`); unset: the request's Host, if allowed."""
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    """The Host values an upload URL may be built on when public_url is unset; `*` allows any."""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            pool_size=int(os.environ.get("WFS_POOL_SIZE", "10")),
            files_dir=Path(os.environ.get("WFS_FILES_DIR", "files")),
            rate_limit=_rate_limit(os.environ.get("WFS_RATE_LIMIT")),
            public_url=_public_url(os.environ.get("WFS_PUBLIC_URL")),
            allowed_hosts=_allowed_hosts(
                os.environ.get("WFS_ALLOWED_HOSTS"), os.environ.get(BIND_HOST_VARIABLE)
            ),
        )


def _rate_limit(value: str | None) -> int:
    text = (value or "").strip()
    if not text:
        return DEFAULT_RATE_LIMIT
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"WFS_RATE_LIMIT is requests per minute, a whole number (0: off), not {value!r}")
    return int(text)


def _public_url(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"WFS_PUBLIC_URL is an absolute http(s) URL such as https://api.example.com, not {value!r}"
        )
    return text.rstrip("/")


def _allowed_hosts(value: str | None, bind_host: str | None) -> tuple[str, ...]:
    """WFS_ALLOWED_HOSTS if set, else the loopback names and the address `serve --host` was given."""
    if value and value.strip():
        hosts = [host for host in (item.strip() for item in value.split(",")) if host]
    else:
        hosts = [*LOOPBACK_HOSTS, *([bind_host] if bind_host else [])]
    return tuple(dict.fromkeys(host_name(host) for host in hosts))


def host_name(host: str) -> str:
    """A host as a Host header spells it: lower case, IPv6 addresses in brackets."""
    host = host.strip().lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _optional_path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None
