"""The plugin host: discovery, allow/block lists, failures, per-provider dispatch."""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from polyrelay import ModelInfo, Provider, hookimpl, hookspecs, ir
from polyrelay.plugins import PluginLoadError, bind, collect_providers, make_plugin_manager
from polyrelay.server import load

DOCS = Path(__file__).resolve().parents[2] / "docs"


def install_fake_distribution(root: Path, name: str, module_source: str) -> None:
    """A real installed distribution (dist-info + entry point) on ``root``."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[polyrelay]\n{name} = {name}\n")
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
    assert allowed.get_plugin("openai_compat") is None, "the allow-list excludes everything else"


def test_plugin_that_fails_to_import_is_a_startup_error_naming_it(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, "polyrelay_broken_test", "import no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match="polyrelay_broken_test"):
        make_plugin_manager({})


def test_unknown_hook_implementation_fails_check_pending():
    @hookimpl
    def translate_chunks(provider, stream, data):  # a typo of translate_chunk
        return []

    with pytest.raises(PluginLoadError, match="translate_chunks"):
        make_plugin_manager({}, extra_plugins=[("typo", SimpleNamespace(translate_chunks=translate_chunks))])


def test_chunks_go_only_to_the_owning_plugin():
    calls: list[str] = []

    def plugin(name: str) -> SimpleNamespace:
        @hookimpl
        def register_providers():
            return [Provider(name=name, dialect=ir.OPENAI_CHAT, urls={"api": "http://x"}, models=[ModelInfo(name)])]

        @hookimpl
        def translate_chunk(provider, stream, data):
            calls.append(name)
            return []

        return SimpleNamespace(register_providers=register_providers, translate_chunk=translate_chunk)

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
                             extra_plugins=[("plain", SimpleNamespace(register_providers=register_providers))])
    (provider,) = collect_providers(pm, None)
    decoder = SimpleNamespace(feed=lambda data: [("fed", data)])
    assert bind(pm, provider).translate_chunk(provider=provider, stream=SimpleNamespace(decoder=decoder),
                                              data=b"x") == [("fed", b"x")]


def test_two_plugins_claiming_one_provider_name_is_an_error():
    def plugin() -> SimpleNamespace:
        @hookimpl
        def register_providers():
            return [Provider(name="same", dialect=ir.OPENAI_CHAT, urls={"api": "http://x"})]

        return SimpleNamespace(register_providers=register_providers)

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
