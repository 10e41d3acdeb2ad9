"""The cyclic garbage collector's settings while a hot loop (collector, persist) runs.

Records in flight keep ~20 container objects each alive (level tuples, model objects,
rows, columns) until their batch is stored, so at CPython's default thresholds
(700, 10, 10) the cyclic collector ran hundreds of times per batch, promoting in-flight
batches and rescanning them in full collections. Profiles charged that time to whatever
was allocating (persist's book decode looked like 23 % of its CPU). Measured in a process
with persist's heap (decode + book rows, 2000-row batches, 2/3 books): 21.7 µs/record at
the defaults, 9.7 with the start-up heap frozen, 7.3 frozen with :data:`THRESHOLDS`, 6.8
with the collector off. Hardly any of these objects are in cycles (reference counting frees
them), so collecting less often costs little memory.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (50_000, 20, 10)

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def hot_path_gc() -> Iterator[None]:
    """Freeze what start-up allocated and collect less often while the block runs; the
    process's own settings come back when the last block of the process (a drill runs
    several collectors and persists in one) ends."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*THRESHOLDS)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
