"""Real clients served by a Google account: google-genai, the anthropic SDK as Claude Code uses it,
the openai SDK (chat and responses), and the captured Gemini CLI and Claude Code requests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from polyrelay import jsonutil
from polyrelay.sse import SSEParser
from polyrelay.testing import run_gateway
from polyrelay_gemini.simulator import CodeAssistSimulator, function_call_reply

AuthFile = Callable[..., Path]
MODEL = "gemini-2.5-flash"
GEMINI_3 = "gemini-3-pro-preview"
CAPTURES = Path(__file__).parents[3] / "core/tests/fixtures/captures"
READ_TOOL = {"name": "read_file", "description": "Read a file",
             "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"],
                              "additionalProperties": False}}


def _genai(url: str) -> genai.Client:
    return genai.Client(api_key="client-key", http_options=types.HttpOptions(base_url=url, api_version="v1beta"))


async def test_google_genai_plain_stream_and_function_calling(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path
) -> None:
    """google-genai gets plain Gemini from an account: text, a stream, a function call and its answer."""
    auth_file("ada@example.com", ["proj-a"])
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        client = _genai(gateway.url).aio
        reply = await client.models.generate_content(model=MODEL, contents="Say hello.")
        assert reply.text == google.reply_text
        pieces = [chunk.text async for chunk in await client.models.generate_content_stream(
            model=MODEL, contents="Say hello.")]
        assert "".join(p or "" for p in pieces) == google.reply_text and len(pieces) > 1

        tool = types.Tool(function_declarations=[types.FunctionDeclaration(
            name="get_weather", description="Get weather",
            parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}})])
        config = types.GenerateContentConfig(
            tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
        google.push(function_call_reply(MODEL, "get_weather", {"city": "Paris"}, stream=False))
        called = await client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=config)
        (call,) = called.function_calls or []
        assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
        history = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
                   called.candidates[0].content,
                   types.Content(role="user", parts=[types.Part.from_function_response(
                       name="get_weather", response={"result": "sunny"})])]
        answered = await client.models.generate_content(model=MODEL, contents=history, config=config)
    assert answered.text == google.reply_text
    sent = google.served[-1].json()["request"]
    assert sent["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["properties"] == {
        "city": {"type": "string"}}
    assert sent["contents"][2]["parts"][0]["functionResponse"] == {"name": "get_weather",
                                                                   "response": {"result": "sunny"}}


async def test_anthropic_sdk_the_way_claude_code_uses_it(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path
) -> None:
    """Tools, thinking and a tool round trip from the anthropic SDK, on Gemini 3 through an account.

    Anthropic's history cannot carry the signature Gemini put on its call,
    so the call comes back with the bypass value and Gemini 3 accepts it.
    """
    auth_file("ada@example.com", ["proj-a"])
    google.push(function_call_reply(GEMINI_3, "read_file", {"path": "hello.txt"}, stream=True))
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key="client-key", max_retries=0)
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Read hello.txt."}]
        async with client.messages.stream(
            model=GEMINI_3, max_tokens=4096, system="You are a coding agent.", tools=[READ_TOOL],
            thinking={"type": "enabled", "budget_tokens": 2048}, messages=messages,
        ) as stream:
            first = await stream.get_final_message()
        assert first.stop_reason == "tool_use"
        call = next(b for b in first.content if b.type == "tool_use")
        assert (call.name, call.input) == ("read_file", {"path": "hello.txt"})
        messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                   "content": "hello file"}]}]
        async with client.messages.stream(
            model=GEMINI_3, max_tokens=4096, tools=[READ_TOOL], thinking={"type": "enabled", "budget_tokens": 2048},
            messages=messages,
        ) as stream:
            second = await stream.get_final_message()
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["thinking", "text"]
    assert second.content[-1].text == google.reply_text
    first_sent, second_sent = (r.json()["request"] for r in google.served)
    assert first_sent["systemInstruction"]["parts"][0]["text"] == "You are a coding agent."
    # 2048 tokens is MEDIUM; Gemini 3 Pro has only LOW and HIGH, so the next level up.
    assert first_sent["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "HIGH", "includeThoughts": True}
    model_turn = second_sent["contents"][1]
    (signed,) = [p for p in model_turn["parts"] if "functionCall" in p]
    # Anthropic's history has no place for a signature on a tool call: the documented bypass stands in.
    assert signed["thoughtSignature"] == "skip_thought_signature_validator"
    assert second_sent["contents"][2]["parts"][0]["functionResponse"]["name"] == "read_file"


async def test_openai_sdk_chat_and_responses(google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path) -> None:
    """The openai SDK's chat and responses APIs, streamed and not, served by an account."""
    auth_file("ada@example.com", ["proj-a"])
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="client-key", max_retries=0)
        chat = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
        assert chat.choices[0].message.content == google.reply_text and chat.model == MODEL
        stream = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                                      stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == google.reply_text
        response = await client.responses.create(model=MODEL, input="Hi")
        assert response.output_text == google.reply_text and response.status == "completed"
        events = [e async for e in await client.responses.create(model=MODEL, input="Hi", stream=True)]
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == google.reply_text
    assert len(google.served) == 4


async def test_gemini_3_signature_survives_a_gemini_clients_tool_round_trip(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """A Gemini client replays the signed call byte for byte, and the envelope keeps every signature."""
    auth_file("ada@example.com", ["proj-a"])
    google.push(function_call_reply(GEMINI_3, "read_file", {"path": "a"}, stream=True))
    url_of = "/v1beta/models/{}:streamGenerateContent?alt=sse".format
    turn = {"role": "user", "parts": [{"text": "Read a."}]}
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        async with polyrelay_http.post(gateway.url + url_of(GEMINI_3), json={"contents": [turn]}) as response:
            payloads = [jsonutil.loads(e.data) for e in SSEParser().feed(await response.read())]
        parts = [p for c in payloads for p in c["candidates"][0]["content"]["parts"]]
        (call,) = [p for p in parts if "functionCall" in p]
        history = [turn, {"role": "model", "parts": [*parts, {"thoughtSignature": "c2lnLW9ubHk="}]},
                   {"role": "user", "parts": [{"functionResponse": {"name": "read_file", "response": {"r": 1}}}]}]
        async with polyrelay_http.post(gateway.url + url_of(GEMINI_3), json={"contents": history}) as response:
            assert response.status == 200, await response.read()
    sent = google.served[-1].json()["request"]["contents"][1]["parts"]
    assert [p["thoughtSignature"] for p in sent if "functionCall" in p] == [call["thoughtSignature"]]
    assert {"text": "", "thoughtSignature": "c2lnLW9ubHk="} in sent, "a signature-only part keeps its signature"


def _capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["gemini-cli", "gemini-cli-tool-result", "gemini-cli-router", "claude-code",
                                  "claude-code-tool-result"])
async def test_captured_requests_replayed_through_an_account(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession, name: str
) -> None:
    """What Gemini CLI and Claude Code really send, served by Code Assist: every tool, result and the system."""
    capture = _capture(name)
    auth_file("ada@example.com", ["proj-a"])
    model = capture["path"].split("/")[-1].partition(":")[0] if "/models/" in capture["path"] else \
        capture["body"]["model"]
    target = "gemini-3-flash-preview" if "gemini-3" in model or "claude" in model else "gemini-2.5-pro"
    config = google.config_text(auth_dir, f"model-aliases:\n  {json.dumps(model)}: gemini/{target}")
    query = capture.get("query") or ""
    headers = {k: v for k, v in capture["headers"] if k.lower() in ("anthropic-version", "anthropic-beta",
                                                                    "content-type")}
    async with run_gateway(config) as gateway, polyrelay_http.post(
            f"{gateway.url}{capture['path']}{'?' + query if query else ''}", data=jsonutil.dumps(capture["body"]),
            headers=headers) as response:
        raw = await response.read()
    assert response.status == 200, raw[:500]
    if "streamGenerateContent" in capture["path"] or capture["body"].get("stream"):
        payloads = [jsonutil.loads(e.data) for e in SSEParser().feed(raw)]
        assert payloads, raw[:500]
        if name.startswith("gemini"):
            assert payloads[-1]["candidates"][0]["finishReason"] == "STOP"
            assert all("response" not in p for p in payloads)
        else:
            assert payloads[-1]["type"] == "message_stop"
    else:
        assert jsonutil.loads(raw)["candidates"][0]["finishReason"] == "STOP"
    sent = google.served[-1].json()
    assert (sent["model"], sent["project"]) == (target, "proj-a")
    request = sent["request"]
    body = capture["body"]
    declared = [d["name"] for t in body.get("tools", []) for d in t.get("functionDeclarations", [])] or \
        [t["name"] for t in body.get("tools", []) if "input_schema" in t]
    assert [d["name"] for t in request.get("tools", []) for d in t.get("functionDeclarations", [])] == declared
    assert request.get("systemInstruction", {}).get("parts"), "the system prompt arrives"
    results = [p for c in request["contents"] for p in c["parts"] if "functionResponse" in p]
    if "tool-result" in name:
        assert results and all(p["functionResponse"].get("name") for p in results)
