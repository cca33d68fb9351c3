"""``polyrelay login <provider>``: run a provider's declared login flow and store the account.

The providers' :class:`~polyrelay.accounts.flows.LoginFlow` objects come
from the ``login_flows`` hook.  Addresses are the flow's defaults, then the
config file's ``upstream-urls`` for that provider; the outbound session
honours ``proxy-url``.  The file lands in ``auth-dir`` (``--auth-dir``
overrides), written atomically with mode 0600, and its path is printed.
Any failure is one line on stderr and exit status 1, with no file written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pluggy

from polyrelay.accounts.device import device_login
from polyrelay.accounts.flows import InputLines, LoginContext, LoginError, LoginFlow
from polyrelay.config import Config, ConfigError
from polyrelay.credentials import write_json_atomic
from polyrelay.upstream import Sessions

DEFAULT_TIMEOUT = 300.0
#: The provider's account step (profile, onboarding, a choice the user makes).
ACCOUNT_TIMEOUT = 300.0
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def collect_flows(pm: pluggy.PluginManager) -> dict[str, LoginFlow]:
    """Every installed provider's login flow, by provider name."""
    flows: dict[str, LoginFlow] = {}
    for declared in pm.hook.login_flows():
        for flow in declared or []:
            flows.setdefault(flow.provider, flow)
    return flows


def safe_file_name(name: str) -> str:
    """``name`` as one file name in the auth dir: no separators, no leading dot, ends in ``.json``."""
    stem = name[:-5] if name.endswith(".json") else name
    stem = _UNSAFE.sub("_", stem).lstrip(".") or "account"
    return f"{stem[:200]}.json"


def flow_parser(flow: LoginFlow) -> argparse.ArgumentParser:
    """The option parser of ``polyrelay login <flow.provider>``."""
    parser = argparse.ArgumentParser(prog=f"polyrelay login {flow.provider}",
                                     description=flow.description or f"Log in to a {flow.provider} account.")
    parser.add_argument("--config", "-c", help="config.yaml (upstream-urls, proxy-url, auth-dir)")
    parser.add_argument("--auth-dir", help="where to store the account (default: the config's auth-dir)")
    parser.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    parser.add_argument("--timeout", type=float, default=None,
                        help=f"seconds to wait for the login (default {DEFAULT_TIMEOUT:g}; device: its limit)")
    if flow.browser is not None:
        parser.add_argument("--port", type=int, help=f"callback port (default {flow.browser.port})")
    if flow.browser is not None and flow.device is not None:
        choice = parser.add_mutually_exclusive_group()
        choice.add_argument("--device", dest="mode", action="store_const", const="device",
                            help="use the device-code flow")
        choice.add_argument("--browser", dest="mode", action="store_const", const="browser",
                            help="use the browser flow")
    for option in flow.options:
        parser.add_argument(option.flag, help=option.help, default=option.default)
    return parser


def _load_config(path: str | None, plugins: pluggy.PluginManager) -> tuple[Config, pluggy.PluginManager]:
    from polyrelay.server import load  # the server module pulls in the app; only the command needs it

    return load(path, plugins=plugins)


def login_command(args: argparse.Namespace) -> int:
    """The ``login`` subcommand."""
    flows = collect_flows(args.plugins)
    if not args.provider or args.provider not in flows:
        known = ", ".join(sorted(flows)) or "none installed"
        prefix = f"no login for {args.provider!r}; " if args.provider else ""
        print(f"polyrelay login: {prefix}providers with a login: {known}", file=sys.stderr)
        return 2
    flow = flows[args.provider]
    options = flow_parser(flow).parse_args(args.options)
    if options.config is None:
        options.config = getattr(args, "config", None)
    try:
        config, _ = _load_config(options.config, args.plugins)
    except ConfigError as exc:
        print(f"polyrelay login {flow.provider}: {exc}", file=sys.stderr)
        return 2
    try:
        path = asyncio.run(run_login(flow, options, config))
    except LoginError as exc:
        print(f"polyrelay login {flow.provider}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"polyrelay login {flow.provider}: cancelled", file=sys.stderr)
        return 130
    print(path)
    return 0


def stdin_lines(stream: TextIO | None = None) -> InputLines | None:
    """Lines typed or pasted on standard input, read off the event loop (None: no input)."""
    stream = sys.stdin if stream is None else stream
    if stream is None or stream.closed:
        return None
    loop = asyncio.get_running_loop()
    lines = InputLines()

    def read() -> None:
        # A daemon thread: a blocked readline must not keep the process alive after the login.
        try:
            for line in iter(stream.readline, ""):
                loop.call_soon_threadsafe(lines.feed, line)
        except (OSError, ValueError, RuntimeError):  # no readable stdin (or the login already ended)
            pass
        with contextlib.suppress(RuntimeError):  # the loop may be gone by the time input ends
            loop.call_soon_threadsafe(lines.feed, None)

    threading.Thread(target=read, name="polyrelay-login-stdin", daemon=True).start()
    return lines


async def run_login(
    flow: LoginFlow, options: argparse.Namespace, config: Config, lines: InputLines | None = None,
    stdin: bool = True, say: Callable[[str], None] | None = None,
) -> Path:
    """Run ``flow`` to the end; the path of the stored account file.

    Pasted answers come from ``lines``, else (``stdin``) standard input;
    messages go to ``say`` (default: standard output).
    """
    say = say or _print
    urls = {**flow.urls, **config.upstream_urls.get(flow.provider, {})}
    auth_dir = Path(options.auth_dir).expanduser() if options.auth_dir else config.auth_path
    if flow.notice:
        say(flow.notice)
    mode = getattr(options, "mode", None) or (flow.default if flow.browser and flow.device else
                                              ("browser" if flow.browser else "device"))
    sessions = Sessions(config.proxy_url)
    session, _ = sessions.get()
    if lines is None and stdin:
        lines = stdin_lines()

    async def ask(prompt: str) -> str | None:
        if lines is None:
            return None
        say(prompt)
        line = await lines.readline()
        return None if line is None else line.rstrip("\n")

    ctx = LoginContext(session=session, urls=urls, args=options, say=say, ask=ask)
    wait = options.timeout
    if wait is None:
        wait = flow.device.limit if mode == "device" and flow.device is not None else DEFAULT_TIMEOUT
    try:
        try:
            async with asyncio.timeout(wait):
                if mode == "device":
                    tokens = await device_login(flow, ctx, open_browser=not options.no_browser)
                else:
                    # Imported here: its callback server (aiohttp.web) and webbrowser cost every
                    # `polyrelay serve` start ~30 ms while only a browser login needs them.
                    from polyrelay.accounts.browser import browser_login

                    tokens = await browser_login(flow, ctx, port=options.port,
                                                 open_browser=not options.no_browser, timeout=wait, lines=lines)
        except TimeoutError:
            raise LoginError(f"no answer within {wait:g} s; the login timed out") from None
        try:
            async with asyncio.timeout(ACCOUNT_TIMEOUT):  # profile, onboarding, a question to the user
                account = await flow.account(ctx, tokens)
        except TimeoutError:
            raise LoginError(f"setting up the account took longer than {ACCOUNT_TIMEOUT:g} s") from None
    finally:
        await sessions.close()
    path = auth_dir / safe_file_name(account.name)
    try:
        write_json_atomic(path, account.data)
    except OSError as exc:
        raise LoginError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _print(text: str) -> None:
    print(text, flush=True)

