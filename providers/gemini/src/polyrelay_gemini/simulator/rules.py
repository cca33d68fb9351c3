"""What Code Assist refuses in the ``request`` of its envelope, beyond what AI Studio refuses.

Code Assist takes the Vertex ``GenerateContentRequest`` without ``model``
(that travels in the envelope) and answers 400 ``INVALID_ARGUMENT`` for a
part that carries no data, a function response without a name, and
thinking settings the model does not take: a level on a Gemini 2.5 model, a
level and a budget together, a budget outside the model's range.
"""

from __future__ import annotations

from typing import Any

#: The fields of Code Assist's request (``model`` is not one: it is in the envelope).
CODE_ASSIST_FIELDS = frozenset({"contents", "systemInstruction", "cachedContent", "tools", "toolConfig", "labels",
                                "safetySettings", "generationConfig", "session_id"})
DATA_FIELDS = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
                         "codeExecutionResult"})
#: (lowest, highest, may be 0) thinking budgets by model prefix.
BUDGETS = {"gemini-2.5-pro": (128, 32768, False), "gemini-2.5-flash": (0, 24576, True)}


def code_assist_problem(request: dict[str, Any], model: str) -> str | None:
    """Code Assist's own complaint about ``request`` for ``model``, or None."""
    for name in request:
        if name not in CODE_ASSIST_FIELDS:
            return f"Invalid JSON payload received. Unknown name \"{name}\" at 'request': Cannot find field."
    for i, content in enumerate(request.get("contents") or []):
        parts = content.get("parts") if isinstance(content, dict) else None
        for j, part in enumerate(parts if isinstance(parts, list) else []):
            where = f"request.contents[{i}].parts[{j}]"
            if not isinstance(part, dict) or not DATA_FIELDS & set(part):
                return f"* GenerateContentRequest.{where[8:]}.data: required oneof field 'data' must have one " \
                       "initialized field"
            response = part.get("functionResponse")
            if isinstance(response, dict) and not response.get("name"):
                return f"* GenerateContentRequest.{where[8:]}.function_response.name: Name cannot be empty."
    config = request.get("generationConfig") or {}
    thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
    return thinking_problem(thinking, model) if isinstance(thinking, dict) else None


def thinking_problem(thinking: dict[str, Any], model: str) -> str | None:
    """Google's answer to a ``thinkingConfig`` ``model`` does not take."""
    budget, level = thinking.get("thinkingBudget"), thinking.get("thinkingLevel")
    if budget is not None and level is not None:
        return "You can only set only one of thinking budget and thinking level."
    limits = next((v for k, v in sorted(BUDGETS.items(), key=lambda kv: -len(kv[0])) if model.startswith(k)), None)
    if limits is None:
        return None
    if level is not None:
        return "Thinking level is not supported for this model."
    low, high, may_stop = limits
    if isinstance(budget, int) and budget != -1:
        if budget == 0 and not may_stop:
            return "Budget 0 is invalid. This model only works in thinking mode."
        if budget != 0 and not low <= budget <= high:
            return f"The thinking budget {budget} is invalid. Please choose a value between {low} and {high}."
    return None
