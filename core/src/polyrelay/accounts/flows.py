"""What a provider declares to get ``polyrelay login <provider>``.

A :class:`LoginFlow` names the provider's OAuth client and endpoints, and
carries a browser description (:class:`BrowserLogin`), a device-code one
(:class:`DeviceLogin`) or both.  The core runs the flows; the provider's
:attr:`LoginFlow.account` turns the token answer into the file to store.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import attrs

from polyrelay.accounts.oauth import BodyStyle


class LoginError(Exception):
    """A login failed; the message is the one line shown to the user."""


class InputLines:
    """Lines the user types or pastes, read one at a time.

    Reading is safe to cancel (the browser flow stops listening for a
    paste once the callback answered, and a later question still gets the
    next line); ``None`` marks the end of input.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._ended = False

    def feed(self, line: str | None) -> None:
        """Add a line (None: input ended)."""
        self._queue.put_nowait(line)

    async def readline(self) -> str | None:
        """The next line, or None once input has ended."""
        if self._ended:
            return None
        line = await self._queue.get()
        if line is None:
            self._ended = True
        return line


@attrs.define
class BrowserLogin:
    """The authorization-code flow with PKCE S256, ``state`` and a loopback callback.

    ``redirect_uri`` is ``http://{redirect_host}:{port}{redirect_path}``
    (``--port`` replaces ``port``).  ``authorize_params`` are added to the
    authorization URL (``code=true`` for Claude, ``access_type=offline`` for
    Google).  ``exchange_fields`` are added to the code-exchange body
    (``client_secret``); ``send_state`` puts ``state`` in it too (Claude).
    """

    port: int
    redirect_path: str = "/callback"
    redirect_host: str = "localhost"
    authorize_url: str = "oauth-authorize"
    authorize_params: dict[str, str] = attrs.field(factory=dict)
    exchange_fields: dict[str, str] = attrs.field(factory=dict)
    send_state: bool = False
    pkce: bool = True

    def redirect_uri(self, port: int | None = None) -> str:
        """The registered redirect address, on ``port`` when given."""
        return f"http://{self.redirect_host}:{port or self.port}{self.redirect_path}"


#: A provider's own device flow: ``(flow, context, open_browser)`` → the token answer.
DeviceRunner = Callable[["LoginFlow", "LoginContext", bool], Awaitable[dict[str, Any]]]


@attrs.define
class DeviceLogin:
    """The device authorization grant (RFC 8628), optionally with PKCE.

    ``device_url`` / ``token_url`` name addresses in :attr:`LoginFlow.urls`.
    The poll interval is the server's (``interval``, else ``interval``
    here); ``slow_down`` adds ``slow_down_step`` seconds; the whole wait is
    capped at ``limit`` seconds and at the server's ``expires_in``.

    ``run`` replaces the whole RFC 8628 exchange for a provider whose device
    flow is its own (Codex's deviceauth): it gets the flow, the context and
    whether to open a browser, and returns the token answer.  The core still
    owns the command, the deadline and storing the file.
    """

    device_url: str = "oauth-device"
    token_url: str = "oauth-token"
    style: BodyStyle = "form"
    pkce: bool = True
    interval: float = 5.0
    slow_down_step: float = 5.0
    limit: float = 15 * 60.0
    grant_type: str = "urn:ietf:params:oauth:grant-type:device_code"
    extra_fields: dict[str, str] = attrs.field(factory=dict)
    headers: dict[str, str] = attrs.field(factory=dict)
    run: DeviceRunner | None = None


@attrs.define
class AccountFile:
    """The auth file a login produces: its name in the auth dir and its JSON."""

    name: str
    data: dict[str, Any] = attrs.field(repr=False)


@attrs.define
class LoginOption:
    """An extra ``polyrelay login <provider>`` option (``--project-id ID``)."""

    flag: str
    help: str
    default: str | None = None


@attrs.define
class LoginContext:
    """What :attr:`LoginFlow.account` gets: the session, addresses and options."""

    session: aiohttp.ClientSession
    #: The flow's addresses after ``upstream-urls`` overrides.
    urls: dict[str, str]
    args: argparse.Namespace
    #: ``print`` for messages to the user, ``ask`` for a line of input (None: no terminal).
    say: Callable[[str], None]
    ask: Callable[[str], Awaitable[str | None]]

    def option(self, name: str) -> Any:
        """A parsed extra option by its destination name (``project_id``)."""
        return getattr(self.args, name, None)


#: Builds the stored file from the token answer (may do I/O: profile, onboarding).
AccountBuilder = Callable[[LoginContext, Mapping[str, Any]], Awaitable[AccountFile]]


@attrs.define
class LoginFlow:
    """Everything ``polyrelay login <provider>`` needs from a provider.

    ``urls`` are the default addresses by name (the same names the
    provider's ``upstream-urls`` section uses, so one override serves login
    and serving).  ``token_style`` is the code-exchange body (JSON for
    Claude, form for the others).  ``default`` picks the flow when a
    provider has both (``--device`` / ``--browser`` choose explicitly).
    ``notice`` is printed before anything else (Qwen's end of free tier).
    """

    provider: str
    client_id: str
    scopes: list[str]
    urls: dict[str, str]
    account: AccountBuilder
    browser: BrowserLogin | None = None
    device: DeviceLogin | None = None
    token_url: str = "oauth-token"
    token_style: BodyStyle = "form"
    token_headers: dict[str, str] = attrs.field(factory=dict)
    scope_separator: str = " "
    default: str = "browser"
    options: list[LoginOption] = attrs.field(factory=list)
    notice: str = ""
    description: str = ""

    @property
    def scope(self) -> str:
        """The ``scope`` parameter value."""
        return self.scope_separator.join(self.scopes)
