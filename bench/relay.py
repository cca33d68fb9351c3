"""A null relay: ``python -m bench.relay --port N --upstream M`` copies bytes both ways.

It is the cheapest possible out-of-process hop (raw asyncio, no HTTP
parsing), started on the gateway's core, so the latency scenario can show
what the placement itself costs (two extra loopback hops and cross-core
wake-ups) apart from what the gateway's code costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal


class _Upstream(asyncio.Protocol):
    def __init__(self, downstream: asyncio.Transport) -> None:
        self.downstream = downstream

    def data_received(self, data: bytes) -> None:
        self.downstream.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.downstream.close()


class _Downstream(asyncio.Protocol):
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.transport: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.connecting: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connecting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.transport is not None
        try:
            upstream, _ = await loop.create_connection(lambda: _Upstream(self.transport), "127.0.0.1",
                                                       self.upstream_port)
        except OSError:
            self.transport.close()
            return
        self.upstream = upstream
        for data in self.pending:
            upstream.write(data)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.upstream is not None:
            self.upstream.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.close()


async def serve(port: int, upstream: int, lifetime: float) -> None:
    """Relay 127.0.0.1:``port`` → 127.0.0.1:``upstream`` until SIGTERM or ``lifetime`` s."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Downstream(upstream), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=lifetime)
    server.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.relay``."""
    parser = argparse.ArgumentParser(description="null TCP relay for the latency calibration")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--lifetime", type=float, default=3600.0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.upstream, args.lifetime))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
