"""Accounts while the gateway serves: the auth dir watched, hostile files, single-flight
refresh through the shared OAuth simulator, write-back failures, the persisted disabled state.

The provider is a plugin built only from the shared pieces (``file_credential``,
``OAuthRefresh``), as a provider package would build it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

from polyrelay import Credential, ModelInfo, Provider, hookimpl, ir
from polyrelay.accounts import OAuthRefresh, file_credential
from polyrelay.credentials import write_json_atomic
from polyrelay.testing import Recorded, Reply, run_gateway
from polyrelay.testing.clients import ask
from polyrelay.testing.oauth import OAuthServer
from polyrelay.testing.openai_chat import OpenAIChatSimulator, error_body
from polyrelay.testing.plugin import plugin_of

CLIENT_ID = "acme-client"


class AcmeSimulator(OpenAIChatSimulator):
    """A chat API whose bearer tokens are the OAuth server's live access tokens."""

    def __init__(self, **oauth: Any) -> None:
        self.oauth = OAuthServer(CLIENT_ID, **oauth)
        super().__init__(keys=self.oauth.access_tokens)
        #: Longest random delay before a 401 (so some arrive after a refresh finished).
        self.unauthorized_jitter = 0.0

    def routes(self) -> list[web.RouteDef]:
        return [*super().routes(), *self.oauth.routes()]

    def check(self, recorded: Recorded) -> Reply | None:
        reply = super().check(recorded)
        if reply is not None and reply.status == 401 and self.unauthorized_jitter:
            reply.delay = random.uniform(0, self.unauthorized_jitter)
        return reply


def acme_plugin(simulator: AcmeSimulator) -> object:
    @hookimpl
    def register_providers() -> list[Provider]:
        return [Provider(name="acme", dialect=ir.OPENAI_CHAT, models=[ModelInfo("acme-model")],
                         urls={"api": simulator.api_base, "oauth-token": f"{simulator.base_url}/oauth/token"},
                         credential_types=("acme",), refresh=OAuthRefresh(CLIENT_ID), refresh_lead=600)]

    @hookimpl
    def credential_from_file(data: dict[str, Any], path: Path) -> Credential | None:
        return file_credential("acme", path, data) if data.get("type") == "acme" else None

    return plugin_of(register_providers, credential_from_file)


def account_file(directory: Path, name: str, access: str, refresh: str, **extra: Any) -> Path:
    path = directory / f"acme-{name}.json"
    path.write_text(json.dumps({"type": "acme", "email": f"{name}@example.com", "access_token": access,
                                "refresh_token": refresh, **extra}))
    return path


async def chat(gw: Any, n: int = 1) -> list[str | None]:
    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
    replies = await asyncio.gather(*[client.chat.completions.create(
        model="acme-model", messages=[{"role": "user", "content": "hi"}]) for _ in range(n)])
    return [r.choices[0].message.content for r in replies]


async def eventually(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def hostile_files(directory: Path) -> None:
    (directory / "list-type.json").write_text('{"type": ["acme"]}')
    (directory / "object-type.json").write_text('{"type": {"a": 1}}')
    (directory / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (directory / "huge.json").write_text('{"type": "acme", "pad": "' + "x" * (2 * 1024 * 1024) + '"}')
    (directory / "not-json.json").write_text("{")
    (directory / "no-token.json").write_text('{"type": "acme"}')
    (directory / "stranger.json").write_text('{"type": "nobody-handles-this"}')
    os.mkfifo(directory / "x.json")


async def test_no_single_auth_file_stops_the_gateway(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    hostile_files(tmp_path)
    async with AcmeSimulator() as simulator:
        access, refresh = simulator.oauth.seed()
        account_file(tmp_path, "good", access, refresh)
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("acme", acme_plugin(simulator))]) as gw:
            assert await chat(gw) == ["Hello from the simulator."]
            assert [c.id for c in gw.gateway.pool] == ["acme-good.json"]
    reasons = {r.getMessage().split(":", 1)[0].split()[-1]: r.getMessage() for r in caplog.records
               if r.getMessage().startswith("skipping auth file")}
    assert "not a string" in reasons["list-type.json"] and "not a string" in reasons["object-type.json"]
    assert "nested too deeply" in reasons["deep.json"]
    assert "larger than" in reasons["huge.json"]
    assert "not a regular file" in reasons["x.json"]
    assert "no 'access_token'" in reasons["no-token.json"]
    assert "no installed provider handles type 'nobody-handles-this'" in reasons["stranger.json"]
    assert sum("x.json" in m for m in reasons.values()) == 1, "each file is reported once, not per scan"


async def test_files_added_changed_and_deleted_while_serving(tmp_path):
    async with AcmeSimulator() as simulator, \
            run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("acme", acme_plugin(simulator))]) as gw, \
            aiohttp.ClientSession() as http:
            answer = await ask(http, gw.url, ir.OPENAI_CHAT, "acme-model")
            assert answer.status == 503, "no account yet"
            access, refresh = simulator.oauth.seed()
            path = account_file(tmp_path, "late", "not-yet-valid", refresh)
            await eventually(lambda: len(gw.gateway.pool) == 1)
            account_file(tmp_path, "late", access, refresh, note="rewritten by polyrelay login")
            await eventually(lambda: gw.gateway.pool.get("acme-late.json").secret == access)  # type: ignore[union-attr]
            assert await chat(gw) == ["Hello from the simulator."]
            path.unlink()
            await eventually(lambda: len(gw.gateway.pool) == 0)
            answer = await ask(http, gw.url, ir.OPENAI_CHAT, "acme-model")
            assert answer.status == 503, "a deleted account stops serving"


async def test_concurrent_401s_refresh_once_even_when_some_arrive_after_it(tmp_path):
    async with AcmeSimulator(token_delay=0.05) as simulator:
        _, refresh = simulator.oauth.seed()
        path = account_file(tmp_path, "one", "expired-access", refresh, custom={"kept": True})
        simulator.unauthorized_jitter = 0.5  # many 401s come back after the refresh has finished
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("acme", acme_plugin(simulator))]) as gw:
            assert await chat(gw, 50) == ["Hello from the simulator."] * 50
        assert simulator.oauth.refresh_count == 1, "50 requests that failed with one token share one refresh"
        saved = json.loads(path.read_text())
        assert saved["access_token"] in simulator.oauth.access_tokens
        assert saved["refresh_token"] != refresh, "the rotated refresh token is stored"
        assert saved["custom"] == {"kept": True} and saved["email"] == "one@example.com"
        assert saved["expired"].endswith("Z") and saved["last_refresh"].endswith("Z")


async def test_a_refresh_answer_without_refresh_token_keeps_the_old_one(tmp_path):
    async with AcmeSimulator(rotate=False) as simulator:
        _, refresh = simulator.oauth.seed()
        path = account_file(tmp_path, "one", "expired-access", refresh)
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("acme", acme_plugin(simulator))]) as gw:
            assert await chat(gw) == ["Hello from the simulator."]
        assert json.loads(path.read_text())["refresh_token"] == refresh


async def test_proactive_refresh_renews_before_expiry_without_a_401(tmp_path):
    async with AcmeSimulator() as simulator:
        access, refresh = simulator.oauth.seed()
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        path = account_file(tmp_path, "one", access, refresh, expired=soon)
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("acme", acme_plugin(simulator))]) as gw:
            await eventually(lambda: simulator.oauth.refresh_count == 1)
            assert not [r for r in simulator.requests if r.path.endswith("/chat/completions")]
            assert json.loads(path.read_text())["access_token"] != access
            assert await gw.gateway.accounts.refresh_due() == 0, "a fresh token is not refreshed again"


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """Make ``directory`` refuse new files, for root too (chattr +i) and as a normal user (chmod)."""
    mode = directory.stat().st_mode
    os.chmod(directory, 0o500)
    immutable = False
    try:
        probe = directory / ".probe"
        try:
            probe.write_text("x")
        except OSError:
            pass
        else:
            probe.unlink()
            subprocess.run(["chattr", "+i", str(directory)], check=True)
            immutable = True
        with pytest.raises(OSError):
            (directory / ".probe").write_text("x")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        os.chmod(directory, mode)


async def test_a_failed_write_back_still_serves_is_shown_and_retried(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    auth = tmp_path / "auth"
    auth.mkdir()
    async with AcmeSimulator() as simulator:
        _, refresh = simulator.oauth.seed()
        path = account_file(auth, "one", "expired-access", refresh)
        async with run_gateway(f"auth-dir: {auth}\n", extra_plugins=[("acme", acme_plugin(simulator))]) as gw:
            with unwritable(auth):
                assert await chat(gw, 3) == ["Hello from the simulator."] * 3
                (row,) = [gw.gateway.pool.describe(c) for c in gw.gateway.pool]
                assert row["write_error"] and str(path) in row["write_error"]
                await gw.gateway.accounts.refresh_due()  # a retry while still unwritable: no second log line
            assert json.loads(path.read_text())["access_token"] == "expired-access"
            await gw.gateway.accounts.refresh_due()
            (row,) = [gw.gateway.pool.describe(c) for c in gw.gateway.pool]
            assert row["write_error"] is None
            assert json.loads(path.read_text())["access_token"] in simulator.oauth.access_tokens
        assert simulator.oauth.refresh_count == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "cannot write" in r.getMessage()]
    assert len(errors) == 1 and str(path) in errors[0].getMessage()


async def test_invalid_grant_disables_one_account_persistently_while_others_serve(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with AcmeSimulator() as simulator:
        access, refresh = simulator.oauth.seed()
        good = account_file(tmp_path, "good", access, refresh)
        dead = account_file(tmp_path, "dead", "expired-access", "revoked-refresh-token", extra={"x": 1})
        config = f"auth-dir: {tmp_path}\n"
        async with run_gateway(config, extra_plugins=[("acme", acme_plugin(simulator))]) as gw:
            assert await chat(gw, 6) == ["Hello from the simulator."] * 6
            rows = {r["id"]: r for r in (gw.gateway.pool.describe(c) for c in gw.gateway.pool)}
            assert rows[dead.name]["disabled"] is True
            assert "invalid_grant" in rows[dead.name]["disabled_reason"]
            assert rows[good.name]["disabled"] is False
        saved = json.loads(dead.read_text())
        assert saved["disabled"] is True and "invalid_grant" in saved["disabled_reason"] and saved["extra"] == {"x": 1}
        refreshes = len(simulator.oauth.token_requests)
        assert refreshes == 1, "a dead grant is tried once, never in a loop"
        async with run_gateway(config, extra_plugins=[("acme", acme_plugin(simulator))]) as gw:
            assert gw.gateway.pool.get(dead.name).disabled, "the disabled state survives a restart"  # type: ignore[union-attr]
            assert await chat(gw, 2) == ["Hello from the simulator."] * 2
        assert len(simulator.oauth.token_requests) == refreshes
    disabled_lines = [r for r in caplog.records if "disabled:" in r.getMessage()]
    assert len(disabled_lines) == 1


async def test_error_bodies_of_a_dead_account_reach_the_client_in_its_dialect(tmp_path):
    async with AcmeSimulator() as simulator:
        account_file(tmp_path, "dead", "expired-access", "revoked")
        simulator.push(Reply.json(error_body("bad", "x", None), status=401))
        async with run_gateway(f"auth-dir: {tmp_path}\nrequest-retry: 0\n",
                               extra_plugins=[("acme", acme_plugin(simulator))]) as gw, \
                aiohttp.ClientSession() as http:
            answer = await ask(http, gw.url, ir.ANTHROPIC, "acme-model")
            assert answer.status == 401 and answer.body["type"] == "error"


def test_the_one_writer_writes_through_a_symlink_and_keeps_it(tmp_path):
    real = tmp_path / "real" / "acme-one.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "auth" / "acme-one.json"
    link.parent.mkdir()
    link.symlink_to(real)
    write_json_atomic(link, {"type": "acme", "access_token": "new"})
    assert link.is_symlink(), "the link stays a link"
    assert json.loads(real.read_text())["access_token"] == "new"
    assert sorted(p.name for p in real.parent.iterdir()) == ["acme-one.json"], "no temporary file left"
    long_name = tmp_path / ("claude-" + "a" * 240 + ".json")
    write_json_atomic(long_name, {"ok": True})
    assert json.loads(long_name.read_text()) == {"ok": True}, "a name near NAME_MAX still writes atomically"


async def test_one_file_may_serve_several_rotation_members(tmp_path):
    """A Google-style file listing several projects: one credential each, all gone with the file."""
    async with AcmeSimulator() as simulator:
        plugin = acme_plugin(simulator)

        @hookimpl
        def credential_from_file(data: dict[str, Any], path: Path) -> list[Credential] | None:
            if data.get("type") != "acme":
                return None
            members = []
            for project in str(data["project_id"]).split(","):
                member = file_credential("acme", path, data)
                member.id = f"{path.name}#{project}"
                members.append(member)
            return members

        plugin.credential_from_file = credential_from_file  # type: ignore[attr-defined]
        access, refresh = simulator.oauth.seed()
        path = account_file(tmp_path, "multi", "expired-access", refresh, project_id="p-1,p-2")
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("acme", plugin)]) as gw:
            assert sorted(c.id for c in gw.gateway.pool) == ["acme-multi.json#p-1", "acme-multi.json#p-2"]
            assert await chat(gw, 4) == ["Hello from the simulator."] * 4
            assert simulator.oauth.refresh_count == 1, "members of one file share one token and one refresh"
            assert len({c.secret for c in gw.gateway.pool}) == 1
            access = json.loads(path.read_text())["access_token"]
            refresh = json.loads(path.read_text())["refresh_token"]
            account_file(tmp_path, "multi", access, refresh, project_id="p-2")
            await eventually(lambda: [c.id for c in gw.gateway.pool] == ["acme-multi.json#p-2"])
            path.unlink()
            await eventually(lambda: len(gw.gateway.pool) == 0)


async def test_the_same_file_name_in_two_subdirectories_is_two_accounts(tmp_path):
    async with AcmeSimulator() as simulator:
        for sub in ("work", "home"):
            (tmp_path / sub).mkdir()
            account_file(tmp_path / sub, "dev", *simulator.oauth.seed(sub))
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("acme", acme_plugin(simulator))]) as gw:
            assert len(gw.gateway.pool) == 2
            (tmp_path / "home" / "acme-dev.json").unlink()
            await eventually(lambda: len(gw.gateway.pool) == 1)
            (survivor,) = list(gw.gateway.pool)
            assert survivor.path == tmp_path / "work" / "acme-dev.json"
            assert await chat(gw) == ["Hello from the simulator."]


async def test_refresh_lead_is_configurable_per_provider(tmp_path):
    async with AcmeSimulator() as simulator:
        access, refresh = simulator.oauth.seed()
        in_an_hour = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        account_file(tmp_path, "one", access, refresh, expired=in_an_hour)
        plugin = acme_plugin(simulator)
        async with run_gateway(f"auth-dir: {tmp_path}\n", extra_plugins=[("acme", plugin)]) as gw:
            assert await gw.gateway.accounts.refresh_due() == 0, "an hour left is outside the provider's 10 min"
        config = f"auth-dir: {tmp_path}\nrefresh-lead-seconds:\n  acme: 7200\n"
        async with run_gateway(config, extra_plugins=[("acme", acme_plugin(simulator))]):
            await eventually(lambda: simulator.oauth.refresh_count == 1)
