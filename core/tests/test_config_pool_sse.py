"""Config loading, the credential pool's choices and cooldowns, SSE framing."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyrelay import Credential, Verdict, ir
from polyrelay.config import ConfigError, load_config
from polyrelay.credentials import Pool
from polyrelay.server import load
from polyrelay.sse import SSEParser

CLIPROXY_CONFIG = """
host: ""
port: 8317
auth-dir: "~/.cli-proxy-api"
api-keys: ["k1"]
debug: false
request-retry: 3
max-retry-interval: 30
routing:
  strategy: fill-first
  session-affinity: true
streaming:
  keepalive-seconds: 15
  bootstrap-retries: 1
nonstream-keepalive-interval: 5
remote-management:
  allow-remote: false
  secret-key: ""
quota-exceeded:
  switch-project: true
payload:
  default: []
openai-compatibility:
  - name: openrouter
    base-url: https://openrouter.ai/api/v1
    api-key-entries:
      - api-key: sk-or-v1-xxxx
        proxy-url: socks5://127.0.0.1:1080
    models:
      - name: moonshotai/kimi-k2
        alias: kimi-k2
"""


def test_no_config_means_embedded_defaults():
    config = load_config(None)
    assert (config.host, config.port, config.auth_dir) == ("127.0.0.1", 8317, "~/.polyrelay")
    assert config.routing.strategy == "round-robin" and config.api_keys == []


def test_a_cliproxyapi_config_loads_with_one_warning_naming_unused_keys(caplog):
    caplog.set_level(logging.WARNING)
    config, _ = load(config_text=CLIPROXY_CONFIG, environ={})
    assert config.routing.strategy == "fill-first"
    assert config.sections["openai-compatibility"][0].models[0].alias == "kimi-k2"
    assert config.quota_exceeded.switch_project is True  # read: CLIProxyAPI's quota-exceeded block
    warnings = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert len(warnings) == 1
    for key in ("routing.session-affinity", "remote-management", "payload", "streaming.bootstrap-retries"):
        assert key in warnings[0]
    assert "quota-exceeded" not in warnings[0]
    assert "sk-or-v1-xxxx" not in caplog.text


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("port: eighty", "$.port"),
        ("streaming: {keepalive-seconds: soon}", "$.streaming.keepalive-seconds"),
        ("routing: {strategy: random}", "round-robin"),
        ("openai-compatibility: [{base-url: x}]", "openai-compatibility"),
        ("- just\n- a list", "top level"),
        ("port: [", "not valid YAML"),
    ],
)
def test_invalid_config_fails_naming_the_key(text, where):
    with pytest.raises(ConfigError, match=__import__("re").escape(where)):
        load(config_text=text, environ={})


def cred(name: str, priority: int = 0) -> Credential:
    return Credential(id=name, provider="p", secret=f"secret-{name}", priority=priority)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ROUTES = [("p", "m")]


def pool_with(*creds: Credential, strategy: str = "round-robin") -> tuple[Pool, Clock]:
    clock = Clock()
    pool = Pool(strategy=strategy, clock=clock)
    for c in creds:
        pool.add(c)
    return pool, clock


def test_round_robin_rotates_and_fill_first_sticks():
    pool, _ = pool_with(cred("a"), cred("b"), cred("c"))
    picks = [pool.choose(pool.candidates(ROUTES), "p:m").id for _ in range(6)]
    assert picks == ["a", "b", "c", "a", "b", "c"]
    pool.strategy = "fill-first"
    assert {pool.choose(pool.candidates(ROUTES), "p:m").id for _ in range(3)} == {"a"}


def test_round_robin_gives_each_credential_its_weight_in_turns():
    heavy = cred("a")
    heavy.weight = 3
    pool, _ = pool_with(heavy, cred("b"))
    picks = [pool.choose(pool.candidates(ROUTES), "p:m").id for _ in range(8)]
    assert picks == ["a", "a", "a", "b", "a", "a", "a", "b"]


def test_priority_tiers_and_cooldown_scopes():
    pool, clock = pool_with(cred("low"), cred("high", priority=5))
    assert [c.id for c in pool.candidates(ROUTES)] == ["high"]
    error = ir.ErrorInfo(429, "slow down")
    pool.mark_failure(pool.get("high"), "m", Verdict("next", error, cooldown=10), 429)
    assert [c.id for c in pool.candidates(ROUTES)] == ["low"], "lower tier only when the higher is cooling"
    assert [c.id for c in pool.candidates([("p", "other-model")])] == ["high"], "a model cooldown is per model"
    pool.mark_failure(pool.get("high"), "m", Verdict("next", error, scope="credential", cooldown=20), 401)
    assert [c.id for c in pool.candidates([("p", "other-model")])] == ["low"]
    assert pool.soonest_recovery(ROUTES) == pytest.approx(20), "the credential-wide cooldown is the longer one"
    clock.now += 20.5
    assert [c.id for c in pool.candidates(ROUTES)] == ["high"]


def test_request_faults_cool_nothing_and_hints_never_shorten_a_cooldown():
    pool, _ = pool_with(cred("a"))
    a = pool.get("a")
    pool.mark_failure(a, "m", Verdict("fail", ir.ErrorInfo(400, "bad")), 400)
    assert pool.candidates(ROUTES)
    pool.mark_failure(a, "m", Verdict("next", ir.ErrorInfo(429, "x"), cooldown=60), 429)
    pool.mark_failure(a, "m", Verdict("next", ir.ErrorInfo(429, "x"), cooldown=5), 429)
    assert pool.soonest_recovery(ROUTES) == pytest.approx(60)


def test_429_without_hint_climbs_a_capped_ladder():
    pool, clock = pool_with(cred("a"))
    a = pool.get("a")
    lengths = []
    for _ in range(14):
        lengths.append(pool.mark_failure(a, "m", Verdict("next", ir.ErrorInfo(429, "x")), 429))
        clock.now += 3600
    assert lengths[:4] == [1, 2, 4, 8]
    assert max(lengths) == 1800
    pool.mark_success(a, "m")
    assert pool.mark_failure(a, "m", Verdict("next", ir.ErrorInfo(429, "x")), 429) == 1


def test_describe_never_shows_secrets():
    pool, _ = pool_with(cred("a"))
    assert "secret-a" not in repr(pool.describe(pool.get("a")))
    assert "secret-a" not in repr(pool.get("a"))


FRAMES = (b"event: message_start\ndata: {\"a\": 1}\n\n: keep-alive\n\n"
          b"data: line one\ndata: line two\r\n\r\ndata:{\"\xc3\xa9\": 2}\n\n")


def parse_all(chunks: list[bytes]) -> list[tuple[str | None, str]]:
    parser = SSEParser()
    events = [e for chunk in chunks for e in parser.feed(chunk)] + parser.close()
    return [(e.event, e.data) for e in events]


def test_sse_parser_reads_names_multiline_data_comments_and_crlf():
    assert parse_all([FRAMES]) == [("message_start", '{"a": 1}'), (None, "line one\nline two"),
                                   (None, '{"é": 2}')]


@given(st.lists(st.integers(min_value=0, max_value=len(FRAMES)), max_size=8))
def test_sse_parser_gives_the_same_events_for_any_split(cuts):
    points = sorted(set(cuts))
    chunks = [FRAMES[a:b] for a, b in zip([0, *points], [*points, len(FRAMES)], strict=True)]
    assert parse_all(chunks) == parse_all([FRAMES])


def test_api_key_models_accept_cliproxyapi_mappings_and_plain_names():
    from polyrelay import ProviderPlugin

    class Foo(ProviderPlugin):
        name = "foo"
        dialect = ir.OPENAI_CHAT
        urls = {"api": "http://x"}
        models = ("foo-large",)
        api_key_section = "foo-api-key"

    plugin = Foo()
    text = "foo-api-key:\n  - api-key: k1\n    models: [{name: foo-large, alias: big}, foo-small]\n"
    config, _ = load(config_text=text, environ={"POLYRELAY_PLUGINS": ""}, extra_plugins=[("foo", plugin)])
    (provider,) = plugin.register_providers(config)
    assert [(m.id, m.upstream_name) for m in provider.models] == [("foo-large", "foo-large"), ("big", "foo-large")]
    (credential,) = plugin.config_credentials(config, provider)
    assert credential.models == ["foo-large", "foo-small"]
    disabled = text.replace("api-key: k1", "api-key: k1\n    disabled: true")
    config, _ = load(config_text=disabled, environ={"POLYRELAY_PLUGINS": ""}, extra_plugins=[("foo", plugin)])
    assert plugin.register_providers(config) == [], "no enabled key, no provider listed"


def test_a_mapping_where_a_string_belongs_is_an_error_not_a_stringified_dict():
    text = ("openai-compatibility:\n  - name: x\n    base-url: http://x\n"
            "    api-key-entries:\n      - api-key: {oops: 1}\n")
    with pytest.raises(ConfigError, match=r"expected str @ openai-compatibility\[0\]\.api-key-entries\[0\]\.api-key"):
        load(config_text=text, environ={})
    assert load(config_text="api-keys: [12345678]", environ={})[0].api_keys == ["12345678"]


@pytest.mark.parametrize("spacing", [b'"model":"a-1"', b'"model": "a-1"', b'"model" :  "a-1"'])
def test_request_model_rename_touches_nothing_else(spacing):
    from polyrelay.passthrough import patch_request_model

    body = b'{"messages":[{"content":"say \\"model\\": \\"a-1\\""}],' + spacing + b',"x":1.10}'
    patched = patch_request_model(body, "a-1", "b/2")
    assert patched == body.replace(spacing, spacing.replace(b"a-1", b"b/2"))
    assert patch_request_model(b'{"model":"a","meta":{"model":"a"}}', "a", "b") is None, "ambiguous: re-serialize"


def test_stream_frame_model_rename():
    from polyrelay.passthrough import model_patch

    patch = model_patch("up-1", "client")
    frame = b'data: {"id":"x","model":"up-1","choices":[]}\n\n'
    assert patch(frame) == frame.replace(b"up-1", b"client")
    assert patch(b'data: {"model" : "up-1"}\n\n') == b'data: {"model" : "client"}\n\n'
    assert patch(b'data: {"text":"no model here"}\n\n') == b'data: {"text":"no model here"}\n\n'
    assert model_patch("same", "same") is None
