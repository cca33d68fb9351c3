"""The real gateway, started in the current event loop on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp
import attrs

from polyrelay.app import App
from polyrelay.config import Config
from polyrelay.gateway import Gateway
from polyrelay.server import load, run


@attrs.define
class RunningGateway:
    """A gateway serving on ``url`` until the ``run_gateway`` block exits."""

    url: str
    config: Config
    #: The live gateway: its pool, router and bindings, for assertions.
    gateway: Gateway


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def run_gateway(
    config_text: str = "",
    extra_plugins: list[tuple[str, object]] | None = None,
    environ: dict[str, str] | None = None,
) -> AsyncIterator[RunningGateway]:
    """Start the gateway with ``config_text`` (YAML); stop it on exit.

    ``auth-dir`` defaults to a directory that does not exist, so a
    developer's own credentials never leak into a test.
    """
    if "auth-dir" not in config_text:
        config_text += "\nauth-dir: /nonexistent/polyrelay-test-auth\n"
    config, pm = load(config_text=config_text, environ=environ or {}, extra_plugins=extra_plugins or ())
    config.host, config.port = "127.0.0.1", free_port()
    app = App(config, pm)
    stop = asyncio.Event()
    task = asyncio.create_task(run(config, pm, shutdown_trigger=stop.wait, app=app))
    url = f"http://127.0.0.1:{config.port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                if task.done():
                    task.result()  # start-up failed: raise its error here
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.02)
            else:
                raise RuntimeError("gateway did not start")
        yield RunningGateway(url=url, config=config, gateway=app.gateway)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
