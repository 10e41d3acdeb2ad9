"""The feed's burst send: many text frames in one socket write, as ``send`` would frame them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from tickguard.sim.sessions import FeedConnection


@asynccontextmanager
async def server() -> AsyncIterator[tuple[str, asyncio.Queue[FeedConnection]]]:
    """A websocket server of FeedConnections; yields its URL and each connection as it opens."""
    opened: asyncio.Queue[FeedConnection] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, FeedConnection)
        await opened.put(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, create_connection=FeedConnection,
                     compression=None, ping_interval=None) as srv:  # fmt: skip
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", opened


async def test_a_burst_is_one_write_of_the_same_frames_in_order() -> None:
    messages = [f"0|H0STCNT0|001|{i}^" + "x" * (i * 37 % 300) for i in range(200)]
    messages += ["Ω non-ascii " * 20, "", "z" * 125, "z" * 126, "z" * 65535, "z" * 65536]
    async with server() as (url, opened), connect(url) as client:
        ws = await opened.get()
        writes: list[bytes] = []
        write = ws.transport.write

        def spy(data: bytes | bytearray | memoryview) -> None:
            writes.append(bytes(data))
            write(data)

        ws.transport.write = spy  # type: ignore[method-assign]
        await ws.send_texts(messages)
        got = [await asyncio.wait_for(client.recv(), 5) for _ in messages]
        burst = writes[0]
    assert got == messages
    frames = [Frame(Opcode.TEXT, m.encode()).serialize(mask=False) for m in messages]
    assert burst == b"".join(frames), "one write: the frames send() would write, in order"


async def test_a_closed_connection_raises_connection_closed() -> None:
    async with server() as (url, opened):
        async with connect(url):
            ws = await opened.get()
        await ws.wait_closed()
        with pytest.raises(ConnectionClosed):
            await ws.send_texts(["0|H0STCNT0|001|1"])


async def test_a_peer_that_does_not_read_holds_the_sender_at_drain() -> None:
    async with server() as (url, opened), connect(url, max_queue=1, close_timeout=0.5) as client:
        ws = await opened.get()
        burst = ["y" * 60_000] * 16
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                while True:
                    await ws.send_texts(burst)
        assert client.state.name == "OPEN"
        # stopped at drain: the high-water mark plus at most one burst is buffered
        assert ws.transport.get_write_buffer_size() < 2 * 1024 * 1024
        ws.transport.abort()
