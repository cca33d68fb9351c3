"""`polyrelay serve --demo` as a newcomer runs it: every SDK, every model family, over loopback.

The demo runs as its own process, exactly as the README's first command
starts it; the SDK clients are built from the lines it prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from polyrelay.testing.demo_process import DemoProcess, demo_process

#: One model of each family, each served by its own provider's simulator.
FAMILIES = {
    "claude-sonnet-4-5": "Hello from the Claude simulator.",
    "gpt-5": "Hello from the Responses simulator.",
    "gemini-2.5-pro": "Hello from the Gemini simulator.",
    "qwen3-coder-plus": "Hello from the DashScope simulator.",
}
SDKS = ["anthropic", "openai-chat", "openai-responses", "google-genai"]
READ_FILE = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}


class Demo(DemoProcess):
    """The running demo, with SDK clients built from the lines it printed."""

    def sdk(self, name: str) -> Any:
        """The SDK client built from the line the demo printed for it."""
        module = {"anthropic": "anthropic.Anthropic(", "openai": "openai.OpenAI(", "genai": "google.genai.Client("}
        line = next(line for line in self.stdout().splitlines() if line.startswith(module[name]))
        expression = line.split("  #")[0].replace("google.genai.", "genai.")
        return eval(expression, {"anthropic": anthropic, "openai": openai, "genai": genai})  # the pasted text


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("demo")
    (workdir / "README.md").write_text("demo readme\n")
    with demo_process(workdir) as running:
        yield Demo(running.url, running.process, running.out, running.err)


def ask(demo: Demo, sdk: str, model: str, stream: bool) -> str:
    """One plain turn through ``sdk``; the answer's text."""
    prompt = "Say hello."
    if sdk == "anthropic":
        client = demo.sdk("anthropic")
        turn = [{"role": "user", "content": prompt}]
        if stream:
            with client.messages.stream(model=model, max_tokens=256, messages=turn) as s:
                return "".join(s.text_stream)
        message = client.messages.create(model=model, max_tokens=256, messages=turn)
        return "".join(b.text for b in message.content if b.type == "text")
    if sdk == "openai-chat":
        client = demo.sdk("openai")
        if stream:
            chunks = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                    stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
        return reply.choices[0].message.content or ""
    if sdk == "openai-responses":
        client = demo.sdk("openai")
        if stream:
            events = client.responses.create(model=model, input=prompt, stream=True)
            return "".join(e.delta for e in events if e.type == "response.output_text.delta")
        return client.responses.create(model=model, input=prompt).output_text
    client = demo.sdk("genai")
    if stream:
        return "".join(c.text or "" for c in client.models.generate_content_stream(model=model, contents=prompt))
    return client.models.generate_content(model=model, contents=prompt).text or ""


def test_says_it_is_the_demo_and_how_to_leave(demo: Demo) -> None:
    first = demo.stdout().splitlines()[:2]
    assert "DEMO" in first[0] and "no network" in first[0]
    assert "Ctrl+C" in first[1]


def test_prints_what_each_cli_needs(demo: Demo) -> None:
    printed = demo.stdout()
    assert f"ANTHROPIC_BASE_URL={demo.url} ANTHROPIC_API_KEY=" in printed
    assert f"model_providers.polyrelay.base_url={demo.url}/v1" in printed
    assert f"GOOGLE_GEMINI_BASE_URL={demo.url} GEMINI_API_KEY=" in printed
    assert f"OPENAI_BASE_URL={demo.url}/v1 OPENAI_API_KEY=" in printed
    assert len(re.findall(r"polyrelay serving on", demo.logs())) == 1
    assert "Running on" not in demo.logs(), "hypercorn's own line would repeat ours"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("model", list(FAMILIES))
def test_every_family_answers_every_sdk(demo: Demo, model: str, sdk: str, stream: bool) -> None:
    assert ask(demo, sdk, model, stream) == FAMILIES[model]


def _tool_turns(demo: Demo, sdk: str, model: str) -> tuple[str, dict[str, Any], str]:
    """A tool loop: the model calls read_file, the client answers it, the model answers in text."""
    prompt, result = "Read the readme.", "demo readme"
    if sdk == "anthropic":
        client = demo.sdk("anthropic")
        tools = [{"name": "read_file", "description": "Read a file", "input_schema": READ_FILE}]
        history: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        first = client.messages.create(model=model, max_tokens=256, messages=history, tools=tools)
        call = next(b for b in first.content if b.type == "tool_use")
        history += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result}]}]
        second = client.messages.create(model=model, max_tokens=256, messages=history, tools=tools)
        return call.name, call.input, "".join(b.text for b in second.content if b.type == "text")
    if sdk == "openai-chat":
        client = demo.sdk("openai")
        tools = [{"type": "function", "function": {"name": "read_file", "parameters": READ_FILE}}]
        messages: list[Any] = [{"role": "user", "content": prompt}]
        first = client.chat.completions.create(model=model, messages=messages, tools=tools)
        chat_call = first.choices[0].message.tool_calls[0]
        messages += [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": chat_call.id, "content": result}]
        second = client.chat.completions.create(model=model, messages=messages, tools=tools)
        return (chat_call.function.name, json.loads(chat_call.function.arguments),
                second.choices[0].message.content or "")
    if sdk == "openai-responses":
        client = demo.sdk("openai")
        tools = [{"type": "function", "name": "read_file", "parameters": READ_FILE}]
        first = client.responses.create(model=model, input=prompt, tools=tools)
        item = next(o for o in first.output if o.type == "function_call")
        items: list[Any] = [{"role": "user", "content": prompt}, item.model_dump(exclude_none=True),
                            {"type": "function_call_output", "call_id": item.call_id, "output": result}]
        second = client.responses.create(model=model, input=items, tools=tools)
        return item.name, json.loads(item.arguments), second.output_text
    client = demo.sdk("genai")
    config = genai_types.GenerateContentConfig(tools=[genai_types.Tool(function_declarations=[
        genai_types.FunctionDeclaration(name="read_file", parameters_json_schema=READ_FILE)])])
    contents: list[Any] = [genai_types.Content(role="user", parts=[genai_types.Part(text=prompt)])]
    first = client.models.generate_content(model=model, contents=contents, config=config)
    genai_call = first.function_calls[0]
    contents += [first.candidates[0].content, genai_types.Content(role="user", parts=[
        genai_types.Part.from_function_response(name=genai_call.name, response={"output": result})])]
    second = client.models.generate_content(model=model, contents=contents, config=config)
    return genai_call.name, dict(genai_call.args), second.text or ""


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("model", list(FAMILIES))
def test_tool_loop_runs_in_every_sdk(demo: Demo, model: str, sdk: str) -> None:
    name, arguments, answer = _tool_turns(demo, sdk, model)
    assert name == "read_file"
    assert Path(arguments["path"]).name == "README.md"
    assert answer == "The read_file tool returned: demo readme", "the tool's result reached the upstream"


def test_a_key_hits_its_limit_and_the_log_shows_the_rotation(demo: Demo) -> None:
    answers = [ask(demo, "openai-chat", "qwen3-coder-plus", stream=False) for _ in range(10)]
    assert answers == [FAMILIES["qwen3-coder-plus"]] * 10, "the client never sees the simulated limit"
    logs = demo.logs()
    assert "the simulated qwen upstream refuses its first key with a rate limit" in logs
    assert re.search(r"credential \S+ cooling 5\.0s", logs), logs[-3000:]
