"""Servers of one drill's own: the embedded stack's Valkey and PostgreSQL on free ports.

The outage drills stop a server mid-session. The configured servers are shared (other
drills, tests, a running collector), so they are never the ones stopped: the drill starts
the embedded stack's own servers (:mod:`tickguard.stack`, the same binaries, lifecycle and
configuration — AOF and noeviction for Valkey, a de-rooted cluster for PostgreSQL) in a
temporary directory on free loopback ports, and removes them afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tickguard.settings import StackSettings
from tickguard.stack._os import choose_privilege
from tickguard.stack.postgres import EmbeddedPostgres
from tickguard.stack.valkey import EmbeddedValkey

log = logging.getLogger(__name__)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings() -> StackSettings:
    """Stack settings on free ports (the defaults are the embedded stack's own)."""
    return StackSettings(
        pg_port=free_port(), valkey_port=free_port(), start_timeout_s=60.0, stop_timeout_s=30.0
    )


@contextlib.contextmanager
def _temporary_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tickguard-drill-server-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def private_valkey() -> Iterator[EmbeddedValkey]:
    """A running Valkey of the caller's own (``server.url()``), stopped and deleted at exit."""
    with _temporary_root() as root:
        server = EmbeddedValkey(root, _settings())
        server.up()
        try:
            yield server
        finally:
            server.down()


@contextlib.contextmanager
def private_postgres() -> Iterator[EmbeddedPostgres]:
    """A running PostgreSQL cluster of the caller's own, stopped and deleted at exit.

    ``server.url()`` is the application role, which may create databases: enough for a
    drill's scratch database (created, migrated and dropped through it).
    """
    with _temporary_root() as root:
        cfg = _settings()
        server = EmbeddedPostgres(root, cfg, choose_privilege(cfg.pg_privilege, cfg.pg_system_user))
        server.up()
        try:
            yield server
        finally:
            server.down()
