"""Small Prefect run-time helpers shared by the flows: run context, signals, links.

Kept apart so the flows read as wiring. SIGTERM (Prefect cancelling a run, a worker
stopping) becomes a clean stop — readers stop, queues flush — instead of the engine's abrupt
termination, and the previous handler is restored afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)


def package_logging(level: str) -> None:
    """Let tickguard's lifecycle logs reach the run logs.

    ``PREFECT_LOGGING_EXTRA_LOGGERS=tickguard`` attaches Prefect's API handler to the
    package logger but sets no level, so INFO would be dropped at the root's WARNING.
    """
    logging.getLogger("tickguard").setLevel(level)


def current_run() -> Any | None:
    """The FlowRun of the running flow, or None outside a flow."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx.flow_run if ctx is not None else None


def run_link(run_id: object) -> str | None:
    """The Prefect UI address of a flow run, when the UI address is known."""
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    return f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if ui else None


@contextlib.contextmanager
def stop_on_sigterm(on_stop: Callable[[], None]) -> Iterator[None]:
    """Call ``on_stop`` on SIGTERM while inside; a no-op off the main thread."""
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        loop.add_signal_handler(signal.SIGTERM, on_stop)
    except (RuntimeError, ValueError, NotImplementedError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)


async def own_state_is_final(client: Any, run_id: object) -> str | None:
    """The reason to stop when Prefect already holds this run in a final state, else None."""
    try:
        run = await client.read_flow_run(run_id)
    except Exception as exc:  # the API being away must not stop collection
        log.debug("own state not readable: %s", type(exc).__name__)
        return None
    state = run.state
    if state is not None and state.is_final():
        return f"run is {state.name}: {state.message or ''}".strip()
    return None
