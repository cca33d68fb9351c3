"""The device authorization grant (RFC 8628), with optional PKCE.

Ask for a device code, show the user code and the verification address,
then poll the token endpoint at the server's interval: ``authorization_pending``
waits, ``slow_down`` waits longer, approval returns the tokens,
``access_denied`` / ``expired_token`` / the overall limit end the login.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from polyrelay.accounts.flows import DeviceLogin, LoginContext, LoginError, LoginFlow
from polyrelay.accounts.oauth import TokenError, pkce_pair, post_token

PENDING = "authorization_pending"
SLOW_DOWN = "slow_down"


async def poll(
    attempt: Callable[[], Awaitable[dict[str, Any] | None]],
    interval: float,
    deadline: float,
    slow_down_step: float,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Call ``attempt`` every ``interval`` seconds until it returns an answer.

    ``attempt`` returns None while the user has not finished, raises
    :class:`TokenError` with code ``slow_down`` to be polled less often, and
    raises :class:`LoginError` to stop.  Providers with a non-standard
    device flow (Codex's deviceauth) reuse this loop with their own attempt.
    """
    while True:
        if clock() + interval > deadline:
            raise LoginError("the device code expired before the login was approved")
        await asyncio.sleep(interval)
        try:
            answer = await attempt()
        except TokenError as exc:
            if exc.code != SLOW_DOWN:
                raise
            interval += slow_down_step
            continue
        if answer is not None:
            return answer


async def device_login(flow: LoginFlow, ctx: LoginContext, *, open_browser: bool) -> dict[str, Any]:
    """Run the whole device flow (the provider's own, when it declares one); the token answer."""
    device = _device(flow)
    if device.run is not None:
        return await device.run(flow, ctx, open_browser)
    verifier, challenge = pkce_pair()
    fields: dict[str, Any] = {"client_id": flow.client_id, "scope": flow.scope, **device.extra_fields}
    if device.pkce:
        fields.update(code_challenge=challenge, code_challenge_method="S256")
    try:
        grant = await post_token(ctx.session, ctx.urls[device.device_url], fields, device.style, device.headers)
    except TokenError as exc:
        raise LoginError(f"the device endpoint refused the request ({exc})") from None
    device_code = grant.get("device_code")
    user_code = grant.get("user_code")
    uri = grant.get("verification_uri") or grant.get("verification_url")
    if not isinstance(device_code, str) or not isinstance(user_code, str) or not isinstance(uri, str):
        raise LoginError("the device endpoint's answer lacks device_code, user_code or verification_uri")
    complete = grant.get("verification_uri_complete")
    ctx.say(f"Open {uri} and enter the code {user_code}")
    if isinstance(complete, str) and complete:
        ctx.say(f"(or open {complete})")
    if open_browser:
        import webbrowser

        with contextlib.suppress(Exception):
            webbrowser.open(complete if isinstance(complete, str) and complete else uri)

    interval = _seconds(grant.get("interval"), device.interval)
    expires_in = _seconds(grant.get("expires_in"), device.limit)
    deadline = time.monotonic() + min(expires_in, device.limit)
    token_fields: dict[str, Any] = {"grant_type": device.grant_type, "client_id": flow.client_id,
                                    "device_code": device_code}
    if device.pkce:
        token_fields["code_verifier"] = verifier

    async def attempt() -> dict[str, Any] | None:
        try:
            return await post_token(ctx.session, ctx.urls[device.token_url], token_fields, device.style,
                                    device.headers)
        except TokenError as exc:
            if exc.code == PENDING:
                return None
            if exc.code == SLOW_DOWN:
                raise
            if exc.code == "access_denied":
                raise LoginError("the login was denied") from None
            if exc.code == "expired_token":
                raise LoginError("the device code expired before the login was approved") from None
            raise LoginError(f"the token endpoint refused the device code ({exc})") from None

    ctx.say("Waiting for approval…")
    return await poll(attempt, interval, deadline, device.slow_down_step)


def _seconds(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return default


def _device(flow: LoginFlow) -> DeviceLogin:
    if flow.device is None:
        raise LoginError(f"{flow.provider} has no device login")
    return flow.device
