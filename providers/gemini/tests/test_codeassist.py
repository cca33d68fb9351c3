"""Google accounts served through Code Assist: the envelope, the unwrapped answers, every dialect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from polyrelay import ir
from polyrelay.testing import Reply, run_gateway
from polyrelay.testing.clients import ask
from polyrelay.testing.conformance import ProviderConformance
from polyrelay.testing.fixtures import api_key_config
from polyrelay_gemini import MODELS
from polyrelay_gemini.simulator import CodeAssistSimulator, GeminiSimulator, function_call_reply, limit_reply

AuthFile = Callable[..., Path]
MODEL = "gemini-2.5-flash"


class TestGeminiAccounts(ProviderConformance):
    """The provider contract, served by two Google accounts instead of keys."""

    provider_name = "gemini"
    distribution = "polyrelay-gemini"
    model = MODEL
    expected_text = "Hello from Code Assist."

    @pytest.fixture
    async def simulator(self, tmp_path: Path) -> AsyncIterator[CodeAssistSimulator]:
        async with CodeAssistSimulator(models=set(MODELS)) as simulator:
            for n, email in enumerate(("ada@example.com", "bob@example.com")):
                path = tmp_path / f"gemini-{email}-p{n}.json"
                path.write_text(json.dumps(simulator.auth_data(email, [f"proj-{n}"])))
            simulator.auth_dir = tmp_path  # type: ignore[attr-defined]
            yield simulator

    def config_text(self, simulator: CodeAssistSimulator) -> str:  # type: ignore[override]
        return simulator.config_text(simulator.auth_dir)  # type: ignore[attr-defined]

    def rate_limit_reply(self) -> Reply:
        return limit_reply("rate", MODEL, 30)

    def tool_call_reply(self, name: str, arguments: dict[str, Any], stream: bool) -> Reply:
        return function_call_reply(MODEL, name, arguments, stream)


async def test_envelope_headers_and_no_model_in_the_url(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """Code Assist gets ``{model, project, request}`` at ``v1internal:<method>`` with Gemini CLI's headers."""
    auth_file("ada@example.com", ["proj-a"])
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        for stream in (False, True):
            answer = await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL, "Say hello.", stream=stream)
            assert answer.status == 200, answer.body
    plain, streamed = google.served
    assert plain.path == "/v1internal:generateContent" and not plain.query
    assert streamed.path == "/v1internal:streamGenerateContent" and streamed.query == {"alt": "sse"}
    body = plain.json()
    assert (body["model"], body["project"]) == (MODEL, "proj-a")
    assert "model" not in body["request"]
    assert body["request"]["contents"] == [{"role": "user", "parts": [{"text": "Say hello."}]}]
    assert {s["category"] for s in body["request"]["safetySettings"]} >= {"HARM_CATEGORY_HARASSMENT",
                                                                           "HARM_CATEGORY_CIVIC_INTEGRITY"}
    assert plain.headers["authorization"].startswith("Bearer ya29.")
    assert plain.headers["accept"] == "application/json" and streamed.headers["accept"] == "text/event-stream"
    assert plain.headers["user-agent"].startswith(f"GeminiCLI/0.34.0/{MODEL} (")
    assert plain.headers["user-agent"].endswith("; terminal)")
    assert plain.headers["x-goog-api-client"] == "google-genai-sdk/1.41.0 gl-node/v22.19.0"
    assert "x-goog-api-key" not in plain.headers


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_gemini_client_gets_plain_gemini(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession,
    stream: bool,
) -> None:
    """A Gemini client sees no envelope: each payload is the ``response`` Code Assist wrapped."""
    auth_file("ada@example.com", ["proj-a"])
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}}
    async with run_gateway(google.config_text(auth_dir)) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1beta/models/{MODEL}:{action}", json=body) as response:
        raw = await response.read()
    assert response.status == 200, raw
    payloads = [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")] \
        if stream else [json.loads(raw)]
    assert payloads and all("response" not in p and "candidates" in p for p in payloads)
    parts = [p for payload in payloads for p in payload["candidates"][0]["content"]["parts"]]
    assert parts[0] == {"text": google.thought_text, "thought": True}
    assert "".join(p["text"] for p in parts[1:]) == google.reply_text
    assert parts[1]["thoughtSignature"], "the thought signature reaches the client"
    assert payloads[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_code_assist_quirks_applied_to_a_gemini_client(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """Snake-case fields, ``parameters``, empty parts, split and unnamed responses: fixed once, in the envelope."""
    auth_file("ada@example.com", ["proj-a"])
    schema = {"type": "object", "properties": {"path": {"type": "string", "minLength": 1}}, "required": ["path"],
              "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}
    body = {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"function_declarations": [{"name": "read", "description": "Read", "parameters": schema}]}],
        "contents": [
            {"role": "user", "parts": [{"text": "Read a and b."}]},
            {"role": "model", "parts": []},
            {"role": "model", "parts": [{"functionCall": {"name": "read", "args": {"path": "a"}, "id": "c1"}},
                                        {"functionCall": {"name": "read", "args": {"path": "b"}, "id": "c2"}}]},
            {"role": "user", "parts": [{"functionResponse": {"id": "c2", "response": {"output": "B"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "read",
                                                             "response": {"output": "A"}}}, {}]},
        ],
    }
    async with run_gateway(google.config_text(auth_dir)) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1beta/models/gemini-3-flash-preview:generateContent",
                    json=body) as response:
        raw = await response.read()
    assert response.status == 200, raw
    sent = google.served[-1].json()["request"]
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]} and "system_instruction" not in sent
    (declaration,) = sent["tools"][0]["functionDeclarations"]
    assert "parameters" not in declaration
    assert declaration["parametersJsonSchema"]["properties"]["path"]["type"] == "string"
    assert not {"additionalProperties", "$schema"} & set(declaration["parametersJsonSchema"])
    contents = sent["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"], "the empty model turn is dropped"
    calls = contents[1]["parts"]
    assert all(p["thoughtSignature"] == "skip_thought_signature_validator" for p in calls)
    answers = [p["functionResponse"] for p in contents[2]["parts"]]
    assert [(a["id"], a["name"], a["response"]) for a in answers] == [
        ("c1", "read", {"output": "A"}), ("c2", "read", {"output": "B"})], "one content, call order, names filled"


@pytest.mark.parametrize(("model", "sent", "expected"), [
    ("gemini-2.5-flash", {"thinkingLevel": "high"}, {"thinkingBudget": 24576}),
    ("gemini-2.5-pro", {"thinkingBudget": 0}, {"thinkingBudget": 128}),
    ("gemini-2.5-pro", {"thinkingBudget": 99999}, {"thinkingBudget": 32768}),
    ("gemini-3-pro-preview", {"thinkingBudget": 8192}, {"thinkingLevel": "HIGH"}),
    ("gemini-3-flash-preview", {"thinkingBudget": 600, "thinkingLevel": "low"}, {"thinkingLevel": "LOW"}),
])
async def test_thinking_fitted_to_the_model(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession,
    model: str, sent: dict[str, Any], expected: dict[str, Any],
) -> None:
    """Levels become budgets on 2.5, budgets levels on 3, each clamped to what the model takes."""
    auth_file("ada@example.com", ["proj-a"])
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"thinkingConfig": {**sent, "includeThoughts": True}}}
    async with run_gateway(google.config_text(auth_dir)) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1beta/models/{model}:generateContent", json=body) as response:
        raw = await response.read()
    assert response.status == 200, raw
    thinking = google.served[-1].json()["request"]["generationConfig"]["thinkingConfig"]
    assert thinking == {**expected, "includeThoughts": True}


async def test_simulator_refuses_what_code_assist_refuses(
    google: CodeAssistSimulator, auth_file: AuthFile, polyrelay_http: aiohttp.ClientSession
) -> None:
    """The fake is strict where Code Assist is: no token, no envelope, a foreign project, a level on 2.5."""
    data = google.auth_data("ada@example.com", ["proj-a"])
    token = {"authorization": f"Bearer {data['token']['access_token']}"}
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    url = f"{google.code_assist}:generateContent"
    cases = [
        ({}, {"model": MODEL, "project": "proj-a", "request": request}, 401, "invalid authentication"),
        (token, request, 400, "model and request are required"),
        (token, {"model": MODEL, "request": request}, 400, "Invalid project"),
        (token, {"model": MODEL, "project": "someone-else", "request": request}, 403, "denied on resource"),
        (token, {"model": MODEL, "project": "proj-a", "request": {**request, "model": MODEL}}, 400, "Unknown name"),
        (token, {"model": MODEL, "project": "proj-a", "request": {"contents": [
            {"role": "user", "parts": [{}]}]}}, 400, "required oneof field 'data'"),
        (token, {"model": MODEL, "project": "proj-a", "request": {**request, "generationConfig": {
            "thinkingConfig": {"thinkingLevel": "HIGH"}}}}, 400, "Thinking level is not supported"),
    ]
    for headers, body, status, words in cases:
        async with polyrelay_http.post(url, json=body, headers=headers) as response:
            answer = await response.json()
        assert response.status == status, (body, answer)
        assert words in answer["error"]["message"]


async def test_keys_and_accounts_share_one_pool_and_priority_prefers(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """An AI Studio key and an account serve one model together; ``priority`` puts one kind first."""
    auth_file("ada@example.com", ["proj-a"], priority=1)
    async with GeminiSimulator(keys={"AIzaSyKey-0"}, models=set(MODELS)) as studio:
        keys = api_key_config("gemini-api-key", ("AIzaSyKey-0", studio.api_base))
        async with run_gateway(google.config_text(auth_dir, keys)) as gateway:
            for _ in range(3):
                assert (await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)).status == 200
            assert len(google.served) == 3 and not studio.requests, "the account's priority 1 wins"
            google.limit("proj-a", MODEL, "quota", 60)
            answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)
    assert answer.status == 200 and "Gemini simulator" in answer.text, "the key takes over"
    assert studio.requests[-1].headers["x-goog-api-key"] == "AIzaSyKey-0"


async def test_count_tokens_asks_code_assist_for_an_account(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """The count routes get Code Assist's own count (``{"request": {model, contents}}``), not the estimate."""
    auth_file("ada@example.com", ["proj-a"])
    body = {"contents": [{"role": "user", "parts": [{"text": "Count these words for me, please."}]}]}
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        async with polyrelay_http.post(f"{gateway.url}/v1beta/models/{MODEL}:countTokens", json=body) as response:
            gemini = await response.json()
        async with polyrelay_http.post(f"{gateway.url}/v1/messages/count_tokens",
                headers={"anthropic-version": "2023-06-01"},
                             json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}) as response:
            anthropic_count = await response.json()
    counts = [r for r in google.requests if r.path == "/v1internal:countTokens"]
    assert len(counts) == 2
    sent = counts[0].json()
    assert sent == {"request": {"model": f"models/{MODEL}", "contents": body["contents"]}}
    assert gemini["totalTokens"] == 7, "Code Assist's count (six words, one content), not the estimate"
    assert anthropic_count["input_tokens"] == 2


async def test_gemini_client_streaming_a_json_array_from_an_account(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """``streamGenerateContent`` without ``alt=sse``: Code Assist still streams SSE; the client gets its array."""
    auth_file("ada@example.com", ["proj-a"])
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with run_gateway(google.config_text(auth_dir)) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1beta/models/{MODEL}:streamGenerateContent", json=body) as response:
        raw = await response.read()
    assert response.status == 200, raw
    chunks = json.loads(raw)
    assert isinstance(chunks, list) and all("response" not in c for c in chunks)
    assert "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]) == \
        google.reply_text
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert google.served[-1].query == {"alt": "sse"}


async def test_a_login_file_written_while_serving_serves_every_project_and_its_removal_stops_them(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """The auth dir is watched: a two-project file appears as two members, and leaves as two."""
    auth_dir.mkdir()
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        assert (await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)).status == 503
        path = auth_file("ada@example.com", ["p1", "p2"])
        for _ in range(100):
            if len(gateway.gateway.pool) == 2:
                break
            await asyncio.sleep(0.05)
        for _ in range(4):
            assert (await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)).status == 200
        path.unlink()
        for _ in range(100):
            if not len(gateway.gateway.pool):
                break
            await asyncio.sleep(0.05)
        after = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)
    assert {r.json()["project"] for r in google.served} == {"p1", "p2"}
    assert after.status == 503, "no account left to serve"
