"""REG/REMOVE bookkeeping of one simulated Kiwoom session (reference §2.5), pure.

Registrations live in groups (``grp_no``). ``REG`` with ``refresh: "0"`` replaces the group's
earlier registrations, ``"1"`` (the default) keeps them; ``REMOVE`` drops the listed
(item, type) pairs from the group. The session receives data for the union of its groups.
A request that is malformed, or that would take the session past its registration cap,
changes nothing and is answered ``return_code`` 1 (Kiwoom's cap is UNCONFIRMED: a setting).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SubKey = tuple[str, str]
"""(type, item), e.g. ("0B", "005930")."""
ITEM = re.compile(r"^(?:Q?\d{6})(?:_NX|_AL)?$")
TYPE = re.compile(r"^[0-9][0-9A-Za-z]$")
BAD_INPUT = "입력 값 형식이 올바르지 않습니다"
OVER_CAP = "등록 종목수 초과"


@dataclass(frozen=True, slots=True)
class Change:
    ok: bool
    message: str = ""
    added: list[SubKey] = field(default_factory=list)
    removed: list[SubKey] = field(default_factory=list)


def _keys(data: object) -> list[SubKey] | None:
    """(type, item) pairs of a request's ``data``; None when it is malformed."""
    if not isinstance(data, list) or not data:
        return None
    keys: dict[SubKey, None] = {}
    for entry in data:
        items = entry.get("item") if isinstance(entry, dict) else None
        types = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(items, list) or not isinstance(types, list) or not items or not types:
            return None
        for rtype in types:
            for item in items:
                if not (isinstance(rtype, str) and TYPE.match(rtype)):
                    return None
                if not (isinstance(item, str) and ITEM.match(item)):
                    return None
                keys[(rtype, item)] = None
    return list(keys)


class Registrations:
    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._groups: dict[str, dict[SubKey, None]] = {}

    def all(self) -> set[SubKey]:
        return {key for group in self._groups.values() for key in group}

    def apply(self, msg: dict[str, Any]) -> Change:
        """Apply one REG/REMOVE request; report which keys the session gained or lost."""
        grp_no, keys = msg.get("grp_no"), _keys(msg.get("data"))
        if not isinstance(grp_no, str) or not 0 < len(grp_no) <= 4 or keys is None:
            return Change(False, BAD_INPUT)
        before = self.all()
        group = dict(self._groups.get(grp_no, {}))
        if msg.get("trnm") == "REG":
            if msg.get("refresh", "1") == "0":
                group.clear()
            group.update(dict.fromkeys(keys))
        else:
            for key in keys:
                group.pop(key, None)
        others = {k for g, members in self._groups.items() if g != grp_no for k in members}
        after = others | set(group)
        if len(after) > self._cap:
            return Change(False, OVER_CAP)
        self._groups[grp_no] = group
        added = [k for k in keys if k in after and k not in before]
        removed = sorted(before - after)
        return Change(True, "", added, removed)
