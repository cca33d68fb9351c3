"""The provider's own rules, function by function: names, body rules, limits, claims."""

from __future__ import annotations

import logging

import pytest

from polyrelay import ir
from polyrelay.types import Credential, Verdict
from polyrelay_codex import chatgpt, limits, names
from polyrelay_codex.account import claims, file_name
from polyrelay_codex.simulator import id_token


def test_stand_ins_fit_and_differ():
    long_a = "mcp__" + "server_" * 10 + "__read_file"
    long_b = "mcp__" + "server_" * 10 + "__read_files"
    plain = "x" * 100
    for value in (long_a, long_b, plain):
        assert len(names.stand_in(value)) <= names.LIMIT
    assert names.stand_in(long_a).startswith("mcp__read_file_")
    assert names.stand_in(long_a) != names.stand_in(long_b)
    assert names.stand_in("read_file") == "read_file"


def test_shorten_reaches_nested_tools_choice_and_history_and_reports_what_it_did():
    long = "t" * 80
    body = {"tools": [{"type": "function", "name": long},
                      {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": long + "2"}]}],
            "tool_choice": {"type": "function", "name": long},
            "input": [{"type": "function_call", "call_id": "c" * 70, "name": long, "arguments": "{}"},
                      {"type": "function_call_output", "call_id": "c" * 70, "output": "ok"}]}
    restore = names.shorten(body)
    assert set(restore.values()) == {long, long + "2", "c" * 70}
    assert body["tools"][1]["tools"][0]["name"] == names.stand_in(long + "2")
    assert body["tool_choice"]["name"] == body["input"][0]["name"] == names.stand_in(long)
    assert body["input"][1]["call_id"] == names.stand_in("c" * 70)
    assert names.shorten({"tools": [{"type": "function", "name": "short"}]}) == {}


def test_restore_event_puts_originals_back_everywhere_they_appear():
    long = "t" * 80
    restore = {names.stand_in(long): long}
    short = names.stand_in(long)
    event = {"type": "response.completed", "response": {"output": [{"type": "function_call", "name": short}]}}
    assert names.restore_event(event, restore)
    assert event["response"]["output"][0]["name"] == long
    assert not names.restore_event({"type": "response.output_text.delta", "delta": short}, restore), \
        "text that happens to contain a stand-in is the model's, not a name"


def test_body_rules_leave_a_conforming_body_byte_for_byte():
    raw = b'{"model":"gpt-5","stream":true,"store":false,"include":["reasoning.encrypted_content"],"input":[]}'
    assert chatgpt.chatgpt_body(raw)[0] is raw


def test_body_rules_fix_everything_the_backend_refuses():
    body = {"model": "gpt-5", "input": "hi", "stream": False, "max_output_tokens": 5, "service_tier": "priority",
            "previous_response_id": "resp_1", "stream_options": {}, "instructions": "Be brief."}
    assert chatgpt.apply_rules(body)
    assert body["stream"] is True and body["store"] is False and body["service_tier"] == "priority"
    assert body["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert body["instructions"] == "Be brief."
    assert not {"max_output_tokens", "previous_response_id", "stream_options"} & set(body)


def test_usage_windows_from_headers():
    now = 1_000_000.0
    headers = {"x-codex-primary-used-percent": "93.5", "x-codex-primary-window-minutes": "300",
               "x-codex-primary-reset-after-seconds": "600", "x-codex-secondary-used-percent": "20",
               "x-codex-secondary-reset-at": "1000900"}
    found = limits.windows(headers, now)
    assert found["primary"] == limits.Window(93.5, 300, now + 600)
    assert found["secondary"] == limits.Window(20.0, None, 1000900.0)
    assert limits.windows({}, now) == {}


def test_usage_book_warns_once_per_window(caplog):
    account = Credential(id="codex-a.json", provider="codex", secret="at-x", kind="oauth", label="ada@example.com")
    high = {"x-codex-primary-used-percent": "91", "x-codex-primary-window-minutes": "300"}
    with caplog.at_level(logging.WARNING, logger="polyrelay.codex"):
        for _ in range(3):
            limits.record_usage(account, high)
        limits.record_usage(account, {"x-codex-primary-used-percent": "5"})
        limits.record_usage(account, high)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "ada@example.com" in warnings[0] and "300-minute" in warnings[0]
    assert account.quota["primary"]["used_percent"] == 91


@pytest.mark.parametrize(("err", "expected"), [
    ({"resets_at": 1_000_000 + 7200, "resets_in_seconds": 60}, 7200),
    ({"resets_in_seconds": 60}, 60),
    ({}, limits.USAGE_LIMIT_FALLBACK),
])
def test_usage_limit_reset_prefers_resets_at(err, expected):
    assert limits.usage_limit_reset(err, {}, now=1_000_000) == pytest.approx(expected)


def test_classify_usage_limit_cools_the_account_and_overload_briefly():
    body = b'{"error":{"type":"usage_limit_reached","message":"limit","plan_type":"plus","resets_in_seconds":99}}'
    verdict = limits.classify(ir.ErrorInfo(429, "limit", code="usage_limit_reached"), {}, body)
    assert isinstance(verdict, Verdict) and verdict.scope == "credential" and verdict.cooldown == pytest.approx(99)
    assert "plus" in verdict.error.message
    busy = limits.classify(ir.ErrorInfo(503, "busy", code="server_is_overloaded"), {}, b"{}")
    assert busy is not None and busy.scope == "model" and busy.cooldown == limits.OVERLOAD_COOLDOWN
    capacity = limits.classify(ir.ErrorInfo(429, "Selected model is at capacity. Please try a different model."),
                               {}, b"{}")
    assert capacity is not None and capacity.cooldown == limits.OVERLOAD_COOLDOWN
    assert limits.classify(ir.ErrorInfo(400, "bad"), {}, b"{}") is None


def test_claims_and_file_name():
    token = id_token("ada@example.com", "acct-1", "pro")
    found = claims(token)
    assert (found.email, found.account_id, found.plan) == ("ada@example.com", "acct-1", "pro")
    assert claims("not-a-jwt").account_id == ""
    assert file_name("ada@example.com", "pro") == "codex-ada@example.com-pro.json"
    assert file_name("a/b@x", "") == "codex-a_b@x.json"


def test_the_device_login_waits_fifteen_minutes_unless_told_otherwise():
    from polyrelay.accounts.login import flow_parser
    from polyrelay_codex import URLS
    from polyrelay_codex.login import login_flow

    flow = login_flow(URLS)
    assert flow.device is not None and flow.device.limit == 15 * 60
    assert flow_parser(flow).parse_args(["--device"]).timeout is None, "the command falls back to the flow's limit"
    assert flow.browser is not None and flow.browser.redirect_uri() == "http://localhost:1455/auth/callback"
    assert flow.browser.redirect_uri(1456) == "http://localhost:1456/auth/callback"
