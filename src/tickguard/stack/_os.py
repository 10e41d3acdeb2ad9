"""Process, port, lock and privilege helpers shared by the embedded services.

Everything here is about answering "is *our* daemon alive?" without trusting a single
signal: a pid file can be stale, a pid can be reused by another program, a port can be
held by a stranger. Callers combine these checks; nothing here sleeps without a deadline.

Root: PostgreSQL refuses to run as root (``initdb``, ``pg_ctl`` and ``postgres`` all check
``geteuid() == 0``). :class:`Privilege` wraps their command lines so they run unprivileged:

* ``userns`` (preferred): ``unshare --user --map-user=<nobody>`` starts the binary in a new
  user namespace where outside-root appears as ``nobody``. The files stay owned by root,
  nothing on the host is chmod-ed, no system user is created.
* ``setpriv``: where user namespaces are disabled (some container runtimes), the binary runs
  as ``pg_system_user`` (default ``nobody``) via ``setpriv``; the PostgreSQL directory is
  chowned to that user and its parents get the traverse bit (``o+x``, not read) added.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pwd
import secrets
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import psutil

from tickguard.errors import StackError

logger = logging.getLogger(__name__)

PrivilegeMode = Literal["self", "userns", "setpriv"]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def url_host(host: str) -> str:
    """A host as it appears in a URL (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host else host


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_pid(path: Path) -> int | None:
    """The first line of a pid file as an int, or None when absent or unreadable."""
    try:
        first = path.read_text(encoding="ascii").splitlines()[0]
        return int(first.strip())
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None


def live_process(pid: int | None, name_prefix: str) -> psutil.Process | None:
    """The process ``pid`` if it is alive (not a zombie) and its name starts as expected.

    The name check guards against pid reuse: after a reboot a stale pid file may point
    at an unrelated program, which we must neither reuse nor signal.
    """
    if pid is None or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or not proc.name().startswith(name_prefix):
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def stop_process(pid: int, signals: list[signal.Signals], timeout: float) -> None:
    """Send each signal in turn, waiting up to ``timeout`` for the process to exit."""
    for sig in signals:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_until(lambda: not _pid_running(pid), timeout):
            return
        logger.warning("pid %d still running after %s; escalating", pid, sig.name)
    raise StackError(f"process {pid} did not stop")


def _pid_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock: two tickguard processes never start one service twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def secret_file(path: Path) -> str:
    """Read a generated secret, creating it (mode 0600) the first time.

    The file appears complete or not at all (written aside, then hard-linked into place),
    and when two processes race the first one's secret wins for both.
    """
    if not path.exists():
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(scratch, path)
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    value = path.read_text(encoding="ascii").strip()
    if not value:
        raise StackError(f"{path} is empty; delete it and the server's data to start afresh")
    return value


def run(argv: list[str], timeout: float, what: str) -> None:
    """Run a helper binary; on failure raise StackError carrying its output.

    Output goes to a temporary file, not a pipe: a daemon that inherits a pipe keeps it
    open and would make us wait for its whole lifetime.
    """
    with open(os.devnull, "rb") as devnull, tempfile.TemporaryFile() as out:
        try:
            done = subprocess.run(
                argv, stdin=devnull, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"{what} timed out after {timeout:.0f}s") from None
        except OSError as exc:
            raise StackError(f"{what} could not run: {exc}") from exc
        if done.returncode != 0:
            out.seek(0)
            tail = out.read().decode("utf-8", "replace")[-2000:]
            raise StackError(f"{what} failed (exit {done.returncode}): {tail.strip()}")


@dataclass(frozen=True)
class Privilege:
    """How to run a binary that refuses root, and which uid must own its files."""

    mode: PrivilegeMode
    uid: int
    gid: int

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped so that it runs with a non-root effective uid."""
        if self.mode == "userns":
            ids = [f"--map-user={self.uid}", f"--map-group={self.gid}"]
            return ["unshare", "--user", *ids, "--", *argv]
        if self.mode == "setpriv":
            ids = [f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
            return ["setpriv", *ids, "--", *argv]
        return argv

    def own(self, root: Path, readable: list[Path]) -> None:
        """Give ``root`` (recursively) to the uid the server runs as; open ``readable``."""
        if os.geteuid() != 0:
            return
        owner = self.uid if self.mode == "setpriv" else 0
        group = self.gid if self.mode == "setpriv" else 0
        changed = 0
        for path in [root, *root.rglob("*")]:
            if path.lstat().st_uid != owner:
                os.lchown(path, owner, group)
                changed += 1
        if changed:
            logger.info("gave %d paths under %s to uid %d", changed, root, owner)
        if self.mode == "setpriv":
            for path in [root, *readable]:
                _traversable(path)


def _traversable(path: Path) -> None:
    """Add the traverse bit (o+x, not read) to every parent that lacks it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            logger.warning("adding o+x to %s so the unprivileged server can reach it", parent)
            parent.chmod(mode | stat.S_IXOTH)


def choose_privilege(setting: Literal["auto", "userns", "setpriv"], user: str) -> Privilege:
    """Pick how PostgreSQL binaries run: as ourselves, or de-rooted as configured."""
    if os.geteuid() != 0:
        return Privilege("self", os.geteuid(), os.getegid())
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise StackError(
            f"TICKGUARD_STACK__PG_SYSTEM_USER: no system user {user!r} to run PostgreSQL as"
        ) from None
    if entry.pw_uid == 0:
        raise StackError("TICKGUARD_STACK__PG_SYSTEM_USER must not be root")
    mode: PrivilegeMode = "setpriv"
    if setting == "userns" or (setting == "auto" and _userns_available(entry.pw_uid, entry.pw_gid)):
        mode = "userns"
    return Privilege(mode, entry.pw_uid, entry.pw_gid)


@lru_cache(maxsize=4)
def _userns_available(uid: int, gid: int) -> bool:
    """Probe once whether this kernel/runtime lets us create a user namespace."""
    argv = ["unshare", "--user", f"--map-user={uid}", f"--map-group={gid}", "--", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
