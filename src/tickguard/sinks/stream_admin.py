"""Consumer-group housekeeping for the events stream: create, measure, trim safely.

Why trimming is its own careful module: a blind ``XTRIM MAXLEN`` deletes entries no group
has read yet when a consumer lags, which is a silent loss. Here the trim point is the
lowest id that ANY group still needs — its oldest pending entry, or when nothing is pending
its last-delivered id — and ``XTRIM MINID`` removes only entries strictly below it. A stream
without any group is never trimmed (nobody has consumed anything yet).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

StreamId = tuple[int, int]


def parse_id(raw: bytes | str) -> StreamId:
    """``b"1700000000000-3"`` → ``(1700000000000, 3)`` (ids compare as tuples, not strings)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(value: StreamId) -> str:
    return f"{value[0]}-{value[1]}"


@dataclass(frozen=True, slots=True)
class GroupState:
    name: str
    pending: int
    last_delivered: StreamId
    lag: int | None
    """Entries not yet delivered to the group (Redis ≥ 7; None when Redis cannot tell)."""


def ensure_group(client: redis.Redis, stream: str, group: str) -> bool:
    """Create ``group`` reading from the start of ``stream`` (MKSTREAM); False if it existed."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise
    log.info("created consumer group %s on %s", group, stream)
    return True


def groups(client: redis.Redis, stream: str) -> list[GroupState]:
    """Every consumer group on ``stream`` (empty when the stream does not exist)."""
    try:
        infos: list[dict[str, Any]] = client.xinfo_groups(stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return []
        raise
    return [_group_state(info) for info in infos]


def _group_state(info: dict[str, Any]) -> GroupState:
    name = info["name"]
    lag = info.get("lag")
    return GroupState(
        name=name.decode() if isinstance(name, bytes) else str(name),
        pending=int(info["pending"]),
        last_delivered=parse_id(info["last-delivered-id"]),
        lag=None if lag is None else int(lag),
    )


def trim_floor(client: redis.Redis, stream: str) -> StreamId | None:
    """The lowest id some group still needs; None when no group exists."""
    floor: StreamId | None = None
    for state in groups(client, stream):
        need = state.last_delivered
        if state.pending:
            summary = client.xpending(stream, state.name)
            if summary["min"] is not None:
                need = min(need, parse_id(summary["min"]))
        floor = need if floor is None else min(floor, need)
    return floor


def trim_acknowledged(client: redis.Redis, stream: str) -> int:
    """Delete entries every group has acknowledged; returns how many were deleted."""
    floor = trim_floor(client, stream)
    if floor is None or floor == (0, 0):
        return 0
    deleted = int(client.xtrim(stream, minid=format_id(floor), approximate=False))
    if deleted:
        log.debug(
            "trimmed %d acknowledged entries of %s below %s", deleted, stream, format_id(floor)
        )
    return deleted
