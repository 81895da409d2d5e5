"""Settings: one pydantic-settings object, read from `KANBAN_*` environment variables.

CLI flags use the same names (`--data-dir` is `KANBAN_DATA_DIR`). Nothing else in the code
reads the environment for configuration.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mcp_client.discovery import DEFAULT_GLAMA_URL, DEFAULT_OFFICIAL_URL

DEFAULT_DATA_DIR = Path("~/.local/share/kanban-orchestrator").expanduser()
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KANBAN_", extra="ignore")

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Where the SQLite database, worktrees and keys live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: a SQLite file in the data dir. "
        "postgresql://, postgresql+asyncpg:// and postgresql+psycopg:// are accepted.",
    )
    database_schema: str | None = Field(
        default=None,
        description="PostgreSQL only: the schema to use (search_path). Default: the server's default.",
    )
    host: str = Field(default="127.0.0.1", description="Interface to bind.")
    port: int = Field(default=8000, ge=1, le=65535)
    api_token: SecretStr | None = Field(
        default=None,
        description="When set, every /api request needs `Authorization: Bearer <token>`.",
    )
    # NoDecode: comma separated, not JSON, in the environment.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names accepted in the Host header besides the loopback names "
        "(comma separated in the environment).",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (scheme://host:port) whose pages may call the API besides the server's own "
        "(comma separated in the environment), for a proxy of yours that serves the board under another origin.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="The largest request body accepted; a larger one is refused with 413 before it is read.",
    )
    api_url: str | None = Field(
        default=None,
        description="The URL agents' tools use to reach this server's API. Default: http://127.0.0.1:<port>.",
    )
    frontend_dir: Path | None = Field(
        default=None,
        description="The built frontend to serve at /. Default: frontend/build in the source tree.",
    )
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    event_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the live stream looks for events written by other processes.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Agent runs
    run_agents: bool = Field(
        default=True,
        description="Run agents in this process (an embedded worker). On PostgreSQL any number of "
        "processes may run agents (`kanban serve` with this on, `kanban worker`); with it off, serve only serves.",
    )
    worker_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="This process's worker id (the owner of the runs it executes). Default: <host>:<pid>. A "
        "worker restarted with the same id takes its own runs back at once.",
    )
    worker_host: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The host name a worker records (runs continue their Claude session on the same host). "
        "Default: the machine's host name.",
    )
    worker_heartbeat_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How often a worker reports itself and renews its runs' leases."
    )
    worker_lease_seconds: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="How long a run's lease lasts without renewal: a worker that stopped heartbeating loses "
        "its runs after this (then a live worker takes them over). Must exceed the heartbeat.",
    )
    max_concurrent_runs: int = Field(
        default=3, ge=1, le=64, description="Agent runs at the same time; the rest wait in order."
    )
    resume_interrupted: bool = Field(
        default=True,
        description="On start, resume runs that a crash or restart interrupted (when they have a session).",
    )
    claude_cli: str | None = Field(
        default=None, description="Path of the Claude Code CLI. Default: the one bundled with the SDK."
    )
    agent_home: Path | None = Field(
        default=None,
        description="HOME for the agents' CLI (where it keeps sessions and credentials). Default: the server's HOME.",
    )
    agent_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU priority of agents (nice value; 0 = same as the server). Higher keeps the board and its "
        "live updates responsive while agents and their commands use every core.",
    )
    agent_model: str | None = Field(default=None, description="Default model for agents (a project may set its own).")
    agent_max_turns: int | None = Field(default=None, ge=1, description="Default turn limit per run.")
    agent_max_budget_usd: float | None = Field(default=None, gt=0, description="Default spending limit per run in USD.")
    cancel_grace_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="How long a cancelled agent may take to stop before its processes are killed.",
    )

    # Plugins (MCP servers) and the registries they are found in
    glama_url: str = Field(default=DEFAULT_GLAMA_URL, description="Base URL of the Glama MCP API searched for plugins.")
    mcp_registry_url: str = Field(
        default=DEFAULT_OFFICIAL_URL, description="Base URL of the official MCP Registry searched for plugins."
    )
    glama_api_key: SecretStr | None = Field(
        default=None, description="Optional API key for Glama (sent as a Bearer token with searches)."
    )

    # Knowledge collections
    knowledge_max_upload_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="The largest file accepted into a knowledge collection, and the largest page or PDF fetched from a URL.",
    )
    knowledge_allow_private_urls: bool = Field(
        default=False,
        description="Let knowledge URLs reach loopback, private, link-local and reserved addresses (off: such "
        "URLs, and redirects to them, are refused after the name is resolved).",
    )
    knowledge_fetch_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="The longest a knowledge URL's fetch may take in total."
    )

    # Knowledge search
    knowledge_embedding_model: str = Field(
        default="BAAI/bge-small-en-v1.5",
        min_length=1,
        description="Embedding model for semantic knowledge search: a fastembed model name (downloaded once "
        "into <data dir>/models on first use), or `off` for keyword search only.",
    )
    knowledge_model_path: Path | None = Field(
        default=None,
        description="A local folder with an ONNX embedding model and its tokenizer files (model.onnx, "
        "tokenizer.json, tokenizer_config.json), for machines that cannot download one; it replaces "
        "KANBAN_KNOWLEDGE_EMBEDDING_MODEL.",
    )

    # Outgoing notifications
    notification_retry_seconds: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [2.0, 10.0],
        max_length=10,
        description="The waits between a notification's attempts, in seconds (comma separated in the "
        "environment): a delivery is tried once more than there are waits, then marked failed.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_heartbeat(self) -> Settings:
        if self.worker_lease_seconds <= self.worker_heartbeat_seconds:
            raise ValueError(
                f"worker_lease_seconds ({self.worker_lease_seconds:g}) must be longer than "
                f"worker_heartbeat_seconds ({self.worker_heartbeat_seconds:g}): each heartbeat renews the lease"
            )
        return self

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("notification_retry_seconds", mode="before")
    @classmethod
    def _split_numbers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("notification_retry_seconds", mode="after")
    @classmethod
    def _retry_waits(cls, value: list[float]) -> list[float]:
        if any(not 0 <= wait <= 86_400 for wait in value):
            raise ValueError("each wait must be from 0 to 86400 seconds")
        return value

    @field_validator("allowed_origins", mode="after")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for origin in value:
            parts = urlsplit(origin.strip())
            try:
                parts.port  # noqa: B018 - validates the port
            except ValueError:
                parts = parts._replace(netloc="")
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], such as http://localhost:5173)")
            out.append(origin.strip().rstrip("/"))
        return out

    @field_validator("glama_url", "mcp_registry_url", mode="after")
    @classmethod
    def _registry_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("api_token", "glama_api_key", mode="after")
    @classmethod
    def _empty_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    # -- derived values -------------------------------------------------------------

    @property
    def resolved_api_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def worktrees_dir(self) -> Path:
        return self.data_dir / "worktrees"

    @property
    def workflows_dir(self) -> Path:
        """The user's own workflow templates (`*.yaml`), offered in every project."""
        return self.data_dir / "workflows"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def resolved_database_url(self) -> str:
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'kanban.db'}"
        return normalise_database_url(self.database_url)

    @property
    def database_kind(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.resolved_database_url.startswith("sqlite") else "postgresql"

    @property
    def host_names(self) -> list[str]:
        """Every name accepted in the Host header."""
        names = list(LOOPBACK_HOSTS) + self.allowed_hosts
        if self.host not in ("0.0.0.0", "::", ""):
            names.append(self.host)
        return sorted(set(names))

    @property
    def binds_beyond_loopback(self) -> bool:
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return True


def normalise_database_url(url: str) -> str:
    """Map the URL forms users paste to the async drivers we ship."""
    scheme, _, rest = url.partition("://")
    if not rest:
        raise ValueError(f"Not a database URL: {url!r}")
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        path, _, options = rest.removeprefix("/").partition("?")
        if not path or path == ":memory:":
            raise ValueError("SQLite needs a file (sqlite:///path/to/kanban.db): an in-memory database is not shared")
        if options:
            raise ValueError(f"SQLite URLs take no options here (got ?{options}); the server sets its own")
        return f"sqlite+aiosqlite:///{path}"
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg2", "postgresql+psycopg"):
        parts = urlsplit(f"postgresql+asyncpg://{rest}")
        # libpq's sslmode is called ssl in asyncpg.
        query = [("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(parts.query)]
        return urlunsplit(parts._replace(query=urlencode(query)))
    raise ValueError(f"Unsupported database URL scheme {scheme!r}: use sqlite:///path or postgresql://user@host/db")
