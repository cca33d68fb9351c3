"""OAuth-style credentials: 401 → one refresh → retry; atomic write-back;
and stream-only backends serving non-stream clients.

The provider here is a small plugin registered the way a third party's is
(hook implementations on a module-like object), with an OAuth token
endpoint on the simulator.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import openai
from aiohttp import web

from polyrelay import Credential, ModelInfo, Provider, hookimpl, ir
from polyrelay.testing import Recorded, Reply, run_gateway
from polyrelay.testing.clients import ask
from polyrelay.testing.openai_chat import OpenAIChatSimulator, chunk_frames, error_body
from polyrelay.testing.plugin import plugin_of


class OAuthChatSimulator(OpenAIChatSimulator):
    """A chat upstream whose bearer tokens come from its own token endpoint."""

    def __init__(self) -> None:
        super().__init__(keys={"fresh-access-token-1"})
        self.token_requests: list[dict[str, Any]] = []

    def routes(self) -> list[web.RouteDef]:
        return [*super().routes(), web.post("/oauth/token", self.token)]

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append(form)
        await asyncio.sleep(0.1)  # slow enough for concurrent 401s to pile up
        if form.get("refresh_token") != "refresh-secret-0":
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": "fresh-access-token-1", "refresh_token": "refresh-secret-1",
                                  "expires_in": 3600})

    def check(self, recorded: Recorded) -> Reply | None:
        if recorded.path == "/oauth/token":
            return None
        return super().check(recorded)


async def refresh_token(credential: Credential, session: aiohttp.ClientSession, provider: Provider) -> None:
    """Exchange the refresh token; update the credential and its file data in place."""
    form = {"grant_type": "refresh_token", "refresh_token": credential.refresh_token or ""}
    async with session.post(provider.url("token"), data=form) as response:
        response.raise_for_status()
        tokens = await response.json()
    credential.secret = tokens["access_token"]
    credential.refresh_token = tokens["refresh_token"]
    credential.data.update(access_token=credential.secret, refresh_token=credential.refresh_token)


def oauth_plugin(simulator: OAuthChatSimulator, stream_only: bool = False) -> object:
    @hookimpl
    def register_providers() -> list[Provider]:
        return [Provider(name="oauthsim", dialect=ir.OPENAI_CHAT,
                         urls={"api": simulator.api_base, "token": f"{simulator.base_url}/oauth/token"},
                         models=[ModelInfo("oauth-model")], credential_types=("oauthsim",),
                         refresh=refresh_token, stream_only=stream_only)]

    @hookimpl
    def credential_from_file(data: dict[str, Any], path: Path) -> Credential | None:
        if data.get("type") != "oauthsim":
            return None
        return Credential(id=path.name, provider="oauthsim", kind="oauth", secret=data["access_token"],
                          refresh_token=data["refresh_token"], label=data.get("email", ""), path=path, data=data)

    return plugin_of(register_providers=register_providers, credential_from_file=credential_from_file)


def write_auth_file(directory: Path) -> Path:
    path = directory / "oauthsim-dev@example.com.json"
    path.write_text(json.dumps({"type": "oauthsim", "email": "dev@example.com", "access_token": "stale-access-0",
                                "refresh_token": "refresh-secret-0", "custom_field": {"kept": True}}))
    return path


async def test_401_refreshes_once_and_retries_even_under_concurrency(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = write_auth_file(tmp_path)
    async with OAuthChatSimulator() as simulator:
        plugin = oauth_plugin(simulator)
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("oauthsim", plugin)]) as gw:
            client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
            replies = await asyncio.gather(*[
                client.chat.completions.create(model="oauth-model", messages=[{"role": "user", "content": "hi"}])
                for _ in range(5)])
        assert all(r.choices[0].message.content == "Hello from the simulator." for r in replies)
        assert len(simulator.token_requests) == 1, "concurrent 401s must share one refresh"
        saved = json.loads(path.read_text())
        assert saved["access_token"] == "fresh-access-token-1"
        assert saved["refresh_token"] == "refresh-secret-1"
        assert saved["custom_field"] == {"kept": True}, "unknown auth-file fields survive the write-back"
        assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file is left behind"
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in ("stale-access-0", "refresh-secret-0", "fresh-access-token-1", "refresh-secret-1"):
        assert secret not in logged


async def test_failed_refresh_cools_the_credential_and_answers_in_dialect(tmp_path):
    path = tmp_path / "oauthsim-x.json"
    path.write_text(json.dumps({"type": "oauthsim", "access_token": "stale", "refresh_token": "revoked"}))
    async with OAuthChatSimulator() as simulator:
        async with run_gateway(f"auth-dir: {tmp_path}\nrequest-retry: 0\n",
                               extra_plugins=[("oauthsim", oauth_plugin(simulator))]) as gw:
            async with aiohttp.ClientSession() as http:
                answer = await ask(http, gw.url, ir.ANTHROPIC, "oauth-model")
            assert answer.status == 401
            assert answer.body["type"] == "error"
            assert answer.body["error"]["type"] == "authentication_error"
            (row,) = [gw.gateway.pool.describe(c) for c in gw.gateway.pool]
            assert row["cooldown"]["reason"] == "authentication"
        assert json.loads(path.read_text())["access_token"] == "stale", "a failed refresh writes nothing"


async def test_non_stream_clients_of_a_stream_only_backend_get_an_aggregated_answer(tmp_path):
    write_auth_file(tmp_path)
    async with OAuthChatSimulator() as simulator:
        simulator.keys = None
        plugin = oauth_plugin(simulator, stream_only=True)
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("oauthsim", plugin)]) as gw, \
                aiohttp.ClientSession() as http:
            for dialect in ir.DIALECTS:
                answer = await ask(http, gw.url, dialect, "oauth-model", stream=False)
                assert answer.status == 200, answer.body
                assert answer.text == "Hello from the simulator."
    assert all(r.json()["stream"] is True for r in simulator.requests), "the upstream is always asked to stream"


async def test_upstream_error_messages_do_not_leak_keys_to_clients(tmp_path):
    async with OAuthChatSimulator() as simulator:
        simulator.keys = None
        simulator.push(Reply.json(error_body("Incorrect API key provided: stale-access-0-abcdef.", "x", None),
                                  status=403))
        path = tmp_path / "a.json"
        path.write_text(json.dumps({"type": "oauthsim", "access_token": "stale-access-0-abcdef",
                                    "refresh_token": "r-0-abcdef"}))
        plugin = oauth_plugin(simulator)
        config = f"auth-dir: {tmp_path}\nrequest-retry: 0\n"
        async with run_gateway(config, extra_plugins=[("oauthsim", plugin)]) as gw, \
                aiohttp.ClientSession() as http:
            answer = await ask(http, gw.url, ir.OPENAI_CHAT, "oauth-model")
    assert answer.status in (403, 429)
    assert "stale-access-0-abcdef" not in json.dumps(answer.body)


async def test_refreshed_tokens_are_scrubbed_from_what_clients_get(tmp_path, polyrelay_http):
    write_auth_file(tmp_path)
    fresh = ("fresh-access-token-1", "refresh-secret-1")
    quoted = f"token {fresh[0]} (refresh {fresh[1]}) is not allowed here"
    async with OAuthChatSimulator() as simulator:
        # The retry after the refresh is answered with an error quoting the new tokens, then a stream
        # that fails after its first frame, quoting them again.
        simulator.push(Reply.json(error_body(quoted, "invalid_request_error", None), status=400))
        frames = chunk_frames("oauth-model", ["partial"], include_usage=False)[:2]
        simulator.push(Reply.sse([*frames, b'data: {"error": {"message": "' + quoted.encode() + b'"}}\n\n']))
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("oauthsim", oauth_plugin(simulator))]) as gw:
            complete = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, "oauth-model")
            streamed = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, "oauth-model", stream=True)
    assert len(simulator.token_requests) == 1
    assert complete.status == 400 and streamed.stream_error
    seen = json.dumps([complete.body, streamed.events])
    assert "[redacted]" in seen
    for secret in fresh:
        assert secret not in seen
