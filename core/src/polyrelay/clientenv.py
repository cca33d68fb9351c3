"""What to paste so each well-known client talks to this gateway.

The clients are told apart by the dialect they speak, not by a provider:
any of them can use any model the gateway routes (the core translates).
Each example uses a model of the same dialect when one is served, so the
first thing a user tries is a pass-through.
"""

from __future__ import annotations

from collections.abc import Mapping

from polyrelay import ir


def _example_model(models: Mapping[str, list[str]], dialect: str) -> str:
    """A model served by a provider of ``dialect``, else any served model."""
    for candidate in (dialect, *models):
        if models.get(candidate):
            return models[candidate][0]
    return "MODEL"


def client_setup(url: str, key: str, models: Mapping[str, list[str]]) -> str:
    """Ready-to-paste set-up for Claude Code, Codex CLI, Gemini CLI, Qwen Code and the Python SDKs.

    ``models`` maps a dialect to models served by providers speaking it.
    """
    claude = _example_model(models, ir.ANTHROPIC)
    codex = _example_model(models, ir.OPENAI_RESPONSES)
    gemini = _example_model(models, ir.GEMINI)
    chat = _example_model(models, ir.OPENAI_CHAT)
    return f"""\
# Claude Code
export ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY={key} CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
claude --model {claude}

# Codex CLI
export POLYRELAY_API_KEY={key}
codex -c model_provider=polyrelay -c model_providers.polyrelay.name=polyrelay \\
  -c model_providers.polyrelay.base_url={url}/v1 -c model_providers.polyrelay.env_key=POLYRELAY_API_KEY \\
  -c model_providers.polyrelay.wire_api=responses -m {codex}

# Gemini CLI (its ~/.gemini/settings.json must select API-key auth:
#   {{"security": {{"auth": {{"selectedType": "gemini-api-key"}}}}}})
export GOOGLE_GEMINI_BASE_URL={url} GEMINI_API_KEY={key}
gemini -m {gemini}

# Qwen Code
export OPENAI_BASE_URL={url}/v1 OPENAI_API_KEY={key} OPENAI_MODEL={chat}
qwen

# Python SDKs
anthropic.Anthropic(base_url="{url}", api_key="{key}")  # model="{claude}"
openai.OpenAI(base_url="{url}/v1", api_key="{key}")  # chat.completions and responses, model="{chat}"
google.genai.Client(api_key="{key}", http_options={{"base_url": "{url}"}})  # model="{gemini}"
"""
