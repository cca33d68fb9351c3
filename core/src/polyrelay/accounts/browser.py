"""The browser login: authorization URL, loopback callback, paste fallback, code exchange.

The answer arrives either at the loopback listener (the browser follows the
provider's redirect) or pasted on standard input (the whole redirect URL,
or Claude's ``code#state``), whichever comes first, before a deadline.
``state`` is checked in both cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import html
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import attrs
from aiohttp import web

from polyrelay.accounts.flows import BrowserLogin, InputLines, LoginContext, LoginError, LoginFlow
from polyrelay.accounts.oauth import TokenError, new_state, pkce_pair, post_token


@attrs.define
class Answer:
    """What came back from the authorization server."""

    code: str = attrs.field(repr=False)
    state: str
    error: str = ""


@attrs.define
class Authorization:
    """One login attempt's secrets and its authorization URL."""

    url: str
    state: str
    verifier: str = attrs.field(repr=False)
    redirect_uri: str


def authorization(flow: LoginFlow, urls: Mapping[str, str], port: int | None) -> Authorization:
    """A fresh ``state`` and PKCE pair, and the URL to send the user to."""
    browser = _browser(flow)
    verifier, challenge = pkce_pair()
    state = new_state()
    redirect_uri = browser.redirect_uri(port)
    params: dict[str, str] = dict(browser.authorize_params)
    params.update(client_id=flow.client_id, response_type="code", redirect_uri=redirect_uri, scope=flow.scope,
                  state=state)
    if browser.pkce:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    base = urls[browser.authorize_url]
    joiner = "&" if "?" in base else "?"
    return Authorization(url=f"{base}{joiner}{urlencode(params)}", state=state, verifier=verifier,
                         redirect_uri=redirect_uri)


def parse_answer(text: str) -> Answer | None:
    """A pasted redirect URL, query string or ``code#state``; None if it is neither."""
    text = text.strip()
    if not text:
        return None
    query = urlsplit(text).query if "://" in text else text.lstrip("?")
    if "=" in query:
        fields = {k: v[0] for k, v in parse_qs(query).items()}
        if "code" in fields or "error" in fields:
            error = fields.get("error", "")
            if error and fields.get("error_description"):
                error = f"{error}: {fields['error_description']}"
            return Answer(code=fields.get("code", ""), state=fields.get("state", ""), error=error)
        return None
    code, hash_sign, state = text.partition("#")
    if hash_sign and code and state:
        return Answer(code=code, state=state)
    return None


_PAGE = "<!doctype html><title>polyrelay login</title><body style='font-family:sans-serif'><p>{}</p></body>"


class CallbackListener:
    """The loopback server the provider redirects the browser to."""

    def __init__(self, path: str, answers: asyncio.Queue[Answer]) -> None:
        self.path = path
        self.answers = answers
        self._runner: web.AppRunner | None = None

    async def _callback(self, request: web.Request) -> web.Response:
        answer = parse_answer(request.query_string)
        if answer is None:
            return web.Response(status=400, text=_PAGE.format("This address expects an OAuth answer."),
                                content_type="text/html")
        await self.answers.put(answer)
        message = f"Login failed: {html.escape(answer.error)}" if answer.error else \
            "Login received. You can close this tab and return to the terminal."
        return web.Response(text=_PAGE.format(message), content_type="text/html")

    async def start(self, port: int) -> None:
        """Listen on ``port`` on the loopback addresses ``localhost`` names."""
        app = web.Application()
        app.add_routes([web.get(self.path, self._callback)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for host in ("127.0.0.1", "::1"):
            try:
                await web.TCPSite(self._runner, host, port).start()
            except OSError as exc:
                if host == "127.0.0.1":  # IPv6 loopback is a bonus; IPv4 is required
                    await self.stop()
                    reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be opened ({exc.strerror})"
                    raise LoginError(f"callback port {port} {reason}; pass --port N to use another") from None

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def _pasted(lines: InputLines, answers: asyncio.Queue[Answer], ctx: LoginContext) -> None:
    while (line := await lines.readline()) is not None:
        answer = parse_answer(line)
        if answer is None:
            if line.strip():
                ctx.say("That is neither the redirect URL nor a code#state string; paste the whole line.")
            continue
        await answers.put(answer)


async def wait_for_answer(
    answers: asyncio.Queue[Answer], lines: InputLines | None, ctx: LoginContext, timeout: float
) -> Answer:
    """The first answer from the callback or the pasted input, before ``timeout`` seconds."""
    paste = asyncio.ensure_future(_pasted(lines, answers, ctx)) if lines is not None else None
    try:
        async with asyncio.timeout(timeout):
            return await answers.get()
    except TimeoutError:
        raise LoginError(f"no answer within {timeout:g} s; the login timed out") from None
    finally:
        if paste is not None:
            paste.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await paste


def check_answer(answer: Answer, expected_state: str) -> str:
    """The authorization code, after the denial and ``state`` checks."""
    if answer.error:
        raise LoginError(f"authorization denied ({answer.error})")
    if not hmac.compare_digest(answer.state.encode(), expected_state.encode()):
        raise LoginError("state mismatch: the answer does not belong to this login (start it again)")
    if not answer.code:
        raise LoginError("the answer carries no authorization code")
    return answer.code


async def exchange_code(flow: LoginFlow, ctx: LoginContext, auth: Authorization, code: str) -> dict[str, Any]:
    """Trade the authorization code (with the PKCE verifier) for tokens."""
    browser = _browser(flow)
    fields: dict[str, Any] = {"grant_type": "authorization_code", "code": code, "redirect_uri": auth.redirect_uri,
                              "client_id": flow.client_id}
    if browser.pkce:
        fields["code_verifier"] = auth.verifier
    if browser.send_state:
        fields["state"] = auth.state
    fields.update(browser.exchange_fields)
    try:
        return await post_token(ctx.session, ctx.urls[flow.token_url], fields, flow.token_style, flow.token_headers)
    except TokenError as exc:
        raise LoginError(f"the token endpoint refused the code ({exc})") from None


async def browser_login(
    flow: LoginFlow, ctx: LoginContext, *, port: int | None, open_browser: bool, timeout: float,
    lines: InputLines | None,
) -> dict[str, Any]:
    """Run the whole browser flow; the token answer."""
    browser = _browser(flow)
    auth = authorization(flow, ctx.urls, port)
    answers: asyncio.Queue[Answer] = asyncio.Queue()
    listener = CallbackListener(browser.redirect_path, answers)
    # Listen before showing the URL, so a fast browser never finds the port closed.
    await listener.start(port or browser.port)
    try:
        ctx.say(f"Open this address to log in to {flow.provider}:")
        ctx.say(auth.url)
        ctx.say(f"Waiting for the browser at {auth.redirect_uri} (or paste the redirect URL or code#state here).")
        if open_browser:
            import webbrowser

            with contextlib.suppress(Exception):  # no browser is not an error: the URL is printed
                webbrowser.open(auth.url)
        answer = await wait_for_answer(answers, lines, ctx, timeout)
    finally:
        await listener.stop()
    code = check_answer(answer, auth.state)
    return await exchange_code(flow, ctx, auth, code)


def _browser(flow: LoginFlow) -> BrowserLogin:
    if flow.browser is None:
        raise LoginError(f"{flow.provider} has no browser login")
    return flow.browser
