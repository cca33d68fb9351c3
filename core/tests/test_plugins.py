"""The plugin host: discovery, allow/block lists, failures, per-provider dispatch."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from polyrelay import ModelInfo, Provider, ProviderPlugin, Verdict, hookimpl, hookspecs, ir
from polyrelay.plugins import PluginLoadError, bind, call_each, collect_providers, make_plugin_manager
from polyrelay.server import load
from polyrelay.testing.plugin import plugin_of

DOCS = Path(__file__).resolve().parents[2] / "docs"


def install_fake_distribution(root: Path, name: str, module_source: str, entry_point: str = "") -> None:
    """A real installed distribution (dist-info + entry point) on ``root``."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[polyrelay]\n{entry_point or name} = {name}\n")
    importlib.invalidate_caches()


GOOD_PLUGIN = """
    from polyrelay import Provider, ModelInfo, hookimpl, ir

    @hookimpl
    def register_providers():
        return [Provider(name="echo", dialect=ir.OPENAI_CHAT, urls={"api": "http://127.0.0.1:9/v1"},
                         models=[ModelInfo("echo-1")])]
"""


def test_installed_distribution_is_discovered(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, "polyrelay_echo_test", GOOD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    config, pm = load(config_text="", environ={})
    assert "echo" in [p.name for p in collect_providers(pm, config)]
    assert pm.get_plugin("polyrelay_echo_test") is not None


def test_allow_and_block_lists(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, "polyrelay_echo_test2", GOOD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    blocked = make_plugin_manager({"POLYRELAY_DISABLE_PLUGINS": "polyrelay_echo_test2"})
    assert blocked.get_plugin("polyrelay_echo_test2") is None
    allowed = make_plugin_manager({"POLYRELAY_PLUGINS": "polyrelay_echo_test2"})
    assert allowed.get_plugin("polyrelay_echo_test2") is not None
    assert allowed.get_plugin("polyrelay.openai_compat") is None, "the allow-list excludes everything else"


def test_plugin_that_fails_to_import_is_a_startup_error_naming_it(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, "polyrelay_broken_test", "import no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match="polyrelay_broken_test"):
        make_plugin_manager({})


def test_two_distributions_with_one_entry_point_name_is_a_startup_error_naming_both(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, "polyrelay_twin_one", GOOD_PLUGIN, entry_point="polyrelay_twin")
    install_fake_distribution(tmp_path, "polyrelay_twin_two", GOOD_PLUGIN, entry_point="polyrelay_twin")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match="polyrelay_twin") as failure:
        make_plugin_manager({})
    assert "polyrelay_twin_one" in str(failure.value) and "polyrelay_twin_two" in str(failure.value)


def test_entry_point_named_like_a_registered_plugin_is_an_error():
    with pytest.raises(PluginLoadError, match=r"polyrelay\.defaults"):
        make_plugin_manager({"POLYRELAY_PLUGINS": ""}, extra_plugins=[("polyrelay.defaults", plugin_of())])


def test_unknown_hook_implementation_fails_check_pending():
    @hookimpl
    def translate_chunks(provider, stream, data):  # a typo of translate_chunk
        return []

    with pytest.raises(PluginLoadError, match="translate_chunks"):
        make_plugin_manager({}, extra_plugins=[("typo", plugin_of(translate_chunks=translate_chunks))])


def test_chunks_go_only_to_the_owning_plugin():
    calls: list[str] = []

    def plugin(name: str) -> object:
        @hookimpl
        def register_providers():
            return [Provider(name=name, dialect=ir.OPENAI_CHAT, urls={"api": "http://x"}, models=[ModelInfo(name)])]

        @hookimpl
        def translate_chunk(provider, stream, data):
            calls.append(name)
            return []

        return plugin_of(register_providers=register_providers, translate_chunk=translate_chunk)

    pm = make_plugin_manager({"POLYRELAY_PLUGINS": ""},
                             extra_plugins=[(f"p{i}", plugin(f"prov{i}")) for i in range(4)])
    config, _ = load(config_text="", environ={"POLYRELAY_PLUGINS": ""})
    providers = collect_providers(pm, config)
    binding = bind(pm, providers[2])
    for _ in range(3):
        binding.translate_chunk(provider=providers[2], stream=None, data=b"x")
    assert calls == ["prov2"] * 3


def test_provider_without_own_translate_chunk_gets_the_core_default():
    @hookimpl
    def register_providers():
        return [Provider(name="plain", dialect=ir.OPENAI_CHAT, urls={"api": "http://x"})]

    pm = make_plugin_manager({"POLYRELAY_PLUGINS": ""},
                             extra_plugins=[("plain", plugin_of(register_providers=register_providers))])
    (provider,) = collect_providers(pm, None)
    decoder = SimpleNamespace(feed=lambda data: [("fed", data)])
    assert bind(pm, provider).translate_chunk(provider=provider, stream=SimpleNamespace(decoder=decoder),
                                              data=b"x") == [("fed", b"x")]


def test_two_plugins_claiming_one_provider_name_is_an_error():
    def plugin() -> object:
        @hookimpl
        def register_providers():
            return [Provider(name="same", dialect=ir.OPENAI_CHAT, urls={"api": "http://x"})]

        return plugin_of(register_providers=register_providers)

    pm = make_plugin_manager({"POLYRELAY_PLUGINS": ""}, extra_plugins=[("a", plugin()), ("b", plugin())])
    with pytest.raises(PluginLoadError, match="same"):
        collect_providers(pm, None)


def hook_specs() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "polyrelay_spec")]


def test_the_brief_names_three_hooks_and_they_exist():
    assert {"translate_request", "translate_chunk", "select_credential"} <= set(hook_specs())


@pytest.mark.parametrize("name", hook_specs())
def test_every_hook_spec_has_a_docstring_and_a_docs_section(name):
    assert inspect.getdoc(getattr(hookspecs, name)), f"{name} has no docstring"
    text = (DOCS / "hooks.md").read_text()
    assert re.search(rf"^##+ `{name}\(", text, re.MULTILINE), f"docs/hooks.md has no section for {name}"


def test_per_provider_hooks_are_seen_by_pluggy_tracing():
    """Bound per-provider calls go through pluggy, so hook-call monitoring sees every chunk."""

    @hookimpl
    def register_providers():
        return [Provider(name="traced", dialect=ir.OPENAI_CHAT, urls={"api": "http://x"})]

    @hookimpl
    def translate_chunk(provider, stream, data):
        return [("own", data)]

    plugin = plugin_of(register_providers=register_providers, translate_chunk=translate_chunk)
    pm = make_plugin_manager({"POLYRELAY_PLUGINS": ""}, extra_plugins=[("traced", plugin)])
    seen: list[tuple[str, list[str]]] = []
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append((name, [i.plugin_name for i in impls])),
        lambda outcome, name, impls, kwargs: None,
    )
    (provider,) = collect_providers(pm, None)
    binding = bind(pm, provider)
    assert binding.translate_chunk(provider=provider, stream=None, data=b"x") == [("own", b"x")]
    assert ("register_providers", ["traced"]) in seen
    assert seen[-1] == ("translate_chunk", ["polyrelay.defaults", "traced"])

    undo()
    calls = len(seen)
    assert binding.translate_chunk(provider=provider, stream=None, data=b"y") == [("own", b"y")]
    assert len(seen) == calls, "no monitor left, nothing traced"
    traced: list[str] = []
    pm.trace.root.setwriter(lambda line: traced.append(line))
    pm.enable_tracing()
    binding.translate_chunk(provider=provider, stream=None, data=b"z")
    assert any("translate_chunk" in line for line in traced), traced


def test_a_bound_hook_passes_arguments_with_defaults_as_pluggy_does():
    """An implementation may give a newer argument a default; it still receives the value."""
    seen: list[object] = []

    @hookimpl
    def register_providers():
        return [Provider(name="kw", dialect=ir.OPENAI_CHAT, urls={"api": "http://x"})]

    @hookimpl
    def classify_response(status, error=None):
        seen.append(error)
        return Verdict("fail", error)

    pm = make_plugin_manager({"POLYRELAY_PLUGINS": ""},
                             extra_plugins=[("kw", plugin_of(register_providers, classify_response))])
    (provider,) = collect_providers(pm, None)
    hint = ir.ErrorInfo(429, "slow down", retry_after=1234.0)
    verdict = bind(pm, provider).classify_response(provider=provider, status=429, headers={}, body=b"", error=hint)
    assert verdict.error is hint and seen == [hint]


class TestProviderPlugin:
    """The base class of a one-provider plugin carries its own config hooks."""

    class Foo(ProviderPlugin):
        name = "foo"
        dialect = ir.OPENAI_CHAT
        urls = {"api": "https://api.foo.example/v1"}
        models = ("foo-large",)
        api_key_section = "foo-api-key"

    def test_registers_the_provider_and_one_credential_per_enabled_key(self):
        text = ("foo-api-key:\n  - api-key: k-one\n    models: [{name: foo-large, alias: big}]\n"
                "  - api-key: k-two\n    disabled: true\n")
        config, pm = load(config_text=text, environ={"POLYRELAY_PLUGINS": ""}, extra_plugins=[("foo", self.Foo())])
        (provider,) = collect_providers(pm, config)
        assert (provider.name, provider.dialect, provider.urls) == ("foo", ir.OPENAI_CHAT, {"api": "https://api.foo.example/v1"})
        assert [(m.id, m.upstream_name) for m in provider.models] == [("foo-large", "foo-large"), ("big", "foo-large")]
        assert provider.plugin is pm.get_plugin("foo")
        credentials = [c for _, cs in call_each(pm, "config_credentials", config=config, provider=provider) for c in cs]
        assert [(c.id, c.secret) for c in credentials] == [("foo#0", "k-one")]

    def test_no_enabled_key_registers_nothing(self):
        config, pm = load(config_text="foo-api-key:\n  - api-key: k\n    disabled: true\n",
                          environ={"POLYRELAY_PLUGINS": ""}, extra_plugins=[("foo", self.Foo())])
        assert collect_providers(pm, config) == []

    def test_overriding_a_hook_without_hookimpl_is_refused(self):
        with pytest.raises(TypeError, match="register_providers"):
            class Broken(self.Foo):
                def register_providers(self, config):
                    return []

    def test_the_account_base_hooks_are_guarded_by_the_same_check(self):
        from polyrelay.accounts.plugin import AccountProviderPlugin

        with pytest.raises(TypeError, match="credential_from_file"):
            class Broken(AccountProviderPlugin):
                def credential_from_file(self, data, path):
                    return None

    def test_a_hook_added_by_an_intermediate_base_is_guarded_too(self):
        class WithOwnHook(self.Foo):
            @hookimpl
            def classify_response(self, status):
                return None

        with pytest.raises(TypeError, match="classify_response"):
            class Broken(WithOwnHook):
                def classify_response(self, status):
                    return None

        class Fine(WithOwnHook):
            @hookimpl
            def classify_response(self, status):
                return None

            def credentials(self, config):  # a plain override point, not a hook
                return []


STRICT_MODE_SUITE = '''
import json

import pytest

from polyrelay.testing import Reply
from polyrelay.testing.conformance import ProviderConformance
from polyrelay.testing.fixtures import compat_config
from polyrelay.testing.openai_chat import chunk_frames, completion, error_body


class TestOutsideTheWorkspace(ProviderConformance):
    provider_name = "sim"
    distribution = "polyrelay"
    model = "sim"
    expected_text = "Hello from the simulator."
    simulator_fixture = "polyrelay_chat_upstream"

    def config_text(self, simulator):
        return compat_config(simulator, ["sk-test-a", "sk-test-b"])

    def rate_limit_reply(self):
        return Reply.json(error_body("Rate limit reached. Please try again in 2s.", "requests",
                                     "rate_limit_exceeded"), status=429)

    def tool_call_reply(self, name, arguments, stream):
        if stream:
            return Reply.sse(chunk_frames("sim-model", [], tool_calls=[("call_1", name, [json.dumps(arguments)])]))
        calls = [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]
        return Reply.json(completion("sim-model", None, calls, finish_reason="tool_calls"))


def test_the_kit_injects_no_unprefixed_fixture(request):
    for name in ("http", "chat_upstream", "simulator"):
        with pytest.raises(pytest.FixtureLookupError):
            request.getfixturevalue(name)
'''


def test_conformance_suite_runs_in_strict_mode_outside_the_workspace(tmp_path):
    """A plugin author's own project: strict asyncio mode, no workspace conftest or ini, only the installed kit."""
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    (tmp_path / "test_outside.py").write_text(STRICT_MODE_SUITE)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::pytest.PytestWarning",
         "test_outside.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.fullmatch(r"\d+ passed in .*", summary) and "error" not in summary, summary
