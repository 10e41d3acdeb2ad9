"""The machine under the collectors: disk, memory and CPU, measured against settings.

Why these three: the incident's collector was OOM-killed (memory), a day of raw frames and
a Redis outage's spool need disk, and a saturated CPU shows up as exchange-to-receive lag.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil

from tickguard.preflight.model import CheckResult, failed, passed, warned
from tickguard.settings import Settings

GIB = 1024**3


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def existing_parent(path: Path) -> Path:
    """The nearest existing directory at or above ``path`` (data_dir may not exist yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def check_disk(settings: Settings, subscriptions: int) -> CheckResult:
    """Free space under data_dir against the floor (fail) and the day's projection (warn)."""
    cfg = settings.preflight
    where = existing_parent(settings.data_dir)
    free = shutil.disk_usage(where).free
    projected = subscriptions * cfg.day_bytes_per_subscription
    value = f"{_gib(free)} free at {where}; day projected {_gib(projected)}"
    if free < cfg.disk_min_free_bytes:
        return failed(
            "disk",
            value,
            f"below TICKGUARD_PREFLIGHT__DISK_MIN_FREE_BYTES ({_gib(cfg.disk_min_free_bytes)}): "
            "free space (old raw recordings under data_dir/raw, docker images) before the open",
        )
    if free < projected:
        return warned(
            "disk", value, "today's recordings and a Redis outage's spool may not fit: free space"
        )
    return passed("disk", value)


CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def cgroup_limit(path: Path = CGROUP_MEMORY_MAX) -> int | None:
    """This container's memory limit (cgroup v2), None when unlimited or not in a cgroup."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def check_memory(settings: Settings, limit_path: Path = CGROUP_MEMORY_MAX) -> CheckResult:
    """Available memory (host, and this container's cgroup limit) against what the
    collectors and persist are allowed to use."""
    need = settings.preflight.memory_required_bytes
    available = psutil.virtual_memory().available
    limit = cgroup_limit(limit_path)
    if limit is not None and limit < available:
        available = limit
    where = "container limit" if limit is not None and limit == available else "available"
    value = f"{_gib(available)} {where}; processes need {_gib(need)}"
    if available < need:
        return failed(
            "memory",
            value,
            "the collectors would be OOM-killed (the incident): stop other work on this host "
            "or lower TICKGUARD_STREAM__QUEUE_MAX_EVENTS / raise the host's memory",
        )
    if available < 1.5 * need:
        return warned("memory", value, "little headroom: watch process_resident_memory_bytes")
    return passed("memory", value)


def check_cpu(settings: Settings) -> CheckResult:
    """The 1-minute load average per core."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] / cores
    value = f"load {load:.2f} per core ({cores} cores)"
    if load > settings.preflight.cpu_load_warn:
        return warned(
            "cpu",
            value,
            "a busy host delays frames (exchange→receive lag): move batch jobs off this host",
        )
    return passed("cpu", value)
