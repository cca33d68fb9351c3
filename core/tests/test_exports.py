"""The command's entry and the package names that load on first use: the surface is whole, the imports light."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types

import pytest

import polyrelay
import polyrelay.accounts
from polyrelay import accounts, apikeys, collector, ir
from polyrelay.accounts import flows, oauth


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("package", [polyrelay, polyrelay.accounts], ids=lambda p: p.__name__)
def test_every_exported_name_resolves_to_its_home(package: types.ModuleType) -> None:
    homes = {name: module for module, names in package._HOMES.items() for name in names}
    assert set(package.__all__) - {"__version__"} == set(homes)
    for name, module in homes.items():
        home = importlib.import_module(f"{package.__name__}.{module}")
        value = getattr(package, name)
        assert value is (home if name == module else getattr(home, name))
    assert set(homes) <= set(dir(package))
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        package.Nope  # noqa: B018


def test_the_surface_is_the_modules_own_objects() -> None:
    assert polyrelay.ProviderPlugin is apikeys.ProviderPlugin
    assert polyrelay.collector is collector  # a submodule still imports as one
    assert accounts.LoginFlow is flows.LoginFlow and accounts.OAuthRefresh is oauth.OAuthRefresh


def test_importing_the_command_entry_loads_nothing_else() -> None:
    # polyrelay.__main__ sets the collector's start-up thresholds before the gateway's modules
    # load; that only helps if the package import in front of it stays light.
    loaded = run_python("import sys, polyrelay.__main__; print(sorted(m for m in sys.modules if 'polyrelay' in m))")
    assert json.loads(loaded.replace("'", '"')) == [
        "polyrelay", "polyrelay.__main__", "polyrelay.collector", "polyrelay.exports"]


def test_a_serving_gateway_loads_no_login_machinery() -> None:
    # Every installed provider registered, an auth dir read, the app built: login code is for
    # `polyrelay login` only.
    loaded = run_python(
        "import sys, tempfile\n"
        "from polyrelay.server import load\n"
        "from polyrelay.app import App\n"
        "auth = tempfile.mkdtemp()\n"
        "config, pm = load(config_text=f'auth-dir: {auth}\\n')\n"
        "App(config, pm)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('polyrelay'))))\n"
    ).split()
    assert "polyrelay.accounts.oauth" in loaded and "polyrelay.accounts.authdir" in loaded
    providers = {m.split(".")[0] for m in loaded if m.startswith("polyrelay_")}
    assert {"polyrelay_claude", "polyrelay_codex", "polyrelay_gemini", "polyrelay_qwen"} <= providers
    login = [m for m in loaded if m.rsplit(".", 1)[-1] in ("login", "flows", "device", "browser")]
    assert login == []


def test_the_command_starts_up_while_loading_and_restores_the_thresholds_for_other_commands() -> None:
    out = run_python(
        "import gc\n"
        "gc.set_threshold(700, 10, 10)\n"
        "import polyrelay.__main__ as entry, polyrelay.cli as cli\n"
        "seen = []\n"
        "parser, plugins = cli.parser, cli.cmd_plugins\n"
        "cli.parser = lambda: seen.append(('parse', gc.get_threshold())) or parser()\n"
        "cli.cmd_plugins = lambda args: seen.append(('run', gc.get_threshold())) or plugins(args)\n"
        "code = entry.main(['plugins'])\n"
        "print(code, seen)\n"
    )
    assert out.splitlines()[-1] == f"0 [('parse', {collector.STARTUP_THRESHOLDS}), ('run', (700, 10, 10))]"


def test_finding_and_asking_a_dialect_loads_no_codec_until_one_translates() -> None:
    # Every request asks the dialects whether they claim its path, and a pass-through request asks
    # only such facts; the codecs (request, response, stream, error modules) load when one translates.
    out = run_python(
        "import sys\n"
        "from polyrelay import ir\n"
        "from polyrelay.dialects import all_dialects, dialect_for_path, get_dialect\n"
        "from polyrelay.sse import SSEEvent\n"
        "chat = dialect_for_path('/v1/chat/completions', {})\n"
        "for d in all_dialects():\n"
        "    d.claims_path('/v1/messages'); d.auth_headers('k'); d.upstream_path('m', True)\n"
        "    d.shape_problem({}); d.frame_kind(SSEEvent(None, '[DONE]', b'data: [DONE]\\n\\n')); d.keepalive_frame\n"
        "codec = lambda: sorted(m for m in sys.modules if m.startswith('polyrelay.dialects.')\n"
        "                       and m.rsplit('.', 1)[-1].startswith(('request', 'response', 'stream', 'errors')))\n"
        "print(chat.name, codec())\n"
        "chat.decode_request({'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}]})\n"
        "get_dialect(ir.ANTHROPIC).error_body(ir.ErrorInfo(status=429, message='slow down'))\n"
        "print(codec())\n"
    ).splitlines()
    assert out[0] == f"{ir.OPENAI_CHAT} []"
    assert out[1] == str(["polyrelay.dialects.anthropic.errors", "polyrelay.dialects.openai_chat.request"])
