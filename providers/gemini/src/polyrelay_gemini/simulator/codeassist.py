"""A fake of Google Code Assist (``cloudcode-pa``) and Google's OAuth endpoints, on loopback (gemini-cli's code_assist).

One server answers everything a Gemini CLI account talks to, so tests point
every ``upstream-urls`` entry at it:

* ``/v1internal:loadCodeAssist`` — the account's tier: onboarded
  (``currentTier``, ``cloudaicompanionProject``), not yet onboarded
  (``allowedTiers`` only) or ineligible (``ineligibleTiers`` with
  ``reasonCode``, ``reasonMessage``, ``validationUrl``);
* ``/v1internal:onboardUser`` — a long-running operation: ``done: false``
  with a ``name`` first, ``done: true`` with the project on the next poll
  (``GET /v1internal/operations/...`` or the same POST again); a free-tier
  account that sends a project gets ``Precondition Failed``;
* ``/v1internal:generateContent`` / ``:streamGenerateContent?alt=sse`` /
  ``:countTokens`` — only with a live Bearer token, the envelope
  ``{model, project, request}`` and a project of the token's account; the
  ``request`` checked like AI Studio's plus Code Assist's own refusals
  (fields it does not know, ``model`` among them; parts without data;
  unnamed function responses; thinking settings the model does not take);
  answers wrapped in ``{"response": ..., "traceId": ...}``, in the body and
  in every SSE payload;
* per project and model limits (:meth:`CodeAssistSimulator.limit`) answer
  with Google's 429 ``RESOURCE_EXHAUSTED`` flavours (``RATE_LIMIT_EXCEEDED``
  with ``RetryInfo``, ``QUOTA_EXHAUSTED`` with ``quotaResetTimeStamp``,
  ``INSUFFICIENT_G1_CREDITS_BALANCE``) or the 403s that need the user
  (``VALIDATION_REQUIRED``, ``SERVICE_DISABLED``), and count the requests
  that arrived before the delay they named had passed;
* ``/o/oauth2/auth``, ``/token``, ``/oauth2/v1/userinfo``, ``/v1/projects`` (:mod:`.google`).
"""

from __future__ import annotations

import itertools
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web

from polyrelay import jsonutil
from polyrelay.testing.simulator import Recorded, Reply, Simulator
from polyrelay_gemini.accounts import CLIENT_ID, CLIENT_SECRET, SCOPES, TOKEN_URI
from polyrelay_gemini.simulator.aistudio import (
    _RPC,
    answer_chunks,
    request_problem,
    response_chunk,
    status_reply,
    text_pieces,
    usage,
)
from polyrelay_gemini.simulator.google import GoogleAccount, GoogleAccounts
from polyrelay_gemini.simulator.rules import code_assist_problem

DOMAIN = "cloudcode-pa.googleapis.com"
_ops = itertools.count(1)
#: What a limit answers with: (HTTP status, ErrorInfo reason).
LIMITS = {"rate": (429, "RATE_LIMIT_EXCEEDED"), "quota": (429, "QUOTA_EXHAUSTED"),
          "credits": (429, "INSUFFICIENT_G1_CREDITS_BALANCE"), "validation": (403, "VALIDATION_REQUIRED"),
          "disabled": (403, "SERVICE_DISABLED")}
VALIDATION_URL = "https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=sim"


@attrs.define
class Limit:
    kind: str
    until: float
    #: What ``RetryInfo.retryDelay`` says (None: the time left).
    retry_delay: float | None = None
    #: Requests that came while the limit held (a gateway honouring the delay sends none).
    early: int = 0


def _duration(seconds: float) -> str:
    return f"{max(seconds, 0.0):.3f}s"


def limit_reply(kind: str, model: str, seconds: float, project: str = "sim-project",
                retry_delay: float | None = None) -> Reply:
    """Google's answer for a limit of ``kind`` (see :data:`LIMITS`) that lifts in ``seconds``.

    ``retry_delay`` makes ``RetryInfo`` say something else than the reset
    time stamp (Code Assist's RetryInfo is not always the quota's reset).
    """
    status, reason = LIMITS[kind]
    if kind in ("rate", "quota"):
        reset = datetime.fromtimestamp(time.time() + seconds, UTC).isoformat(timespec="milliseconds")
        metadata = {"uiMessage": "true", "model": model, "quotaResetDelay": _duration(seconds)}
        if kind == "quota":
            metadata["quotaResetTimeStamp"] = reset.replace("+00:00", "Z")
        message = f"You have exhausted your capacity on this model. Your quota will reset after {int(seconds)}s."
        return status_reply(status, "RESOURCE_EXHAUSTED", message, [
            {"@type": _RPC + "ErrorInfo", "reason": reason, "domain": DOMAIN, "metadata": metadata},
            {"@type": _RPC + "RetryInfo", "retryDelay": _duration(seconds if retry_delay is None else retry_delay)}])
    if kind == "credits":
        return status_reply(status, "RESOURCE_EXHAUSTED", "Insufficient Google One AI credits balance.",
                            [{"@type": _RPC + "ErrorInfo", "reason": reason}])
    if kind == "validation":
        return status_reply(status, "PERMISSION_DENIED", "Verify your account to continue.", [
            {"@type": _RPC + "ErrorInfo", "reason": reason, "domain": DOMAIN,
             "metadata": {"validation_link": VALIDATION_URL}},
            {"@type": _RPC + "Help", "links": [{"description": "Verify your account", "url": VALIDATION_URL}]}])
    link = f"https://console.developers.google.com/apis/api/cloudaicompanion.googleapis.com/overview?project={project}"
    return status_reply(status, "PERMISSION_DENIED", f"Gemini for Google Cloud API has not been used in project "
                        f"{project} before or it is disabled.", [
        {"@type": _RPC + "ErrorInfo", "reason": reason, "domain": "googleapis.com",
         "metadata": {"service": "cloudaicompanion.googleapis.com", "consumer": f"projects/{project}",
                      "activationUrl": link}},
        {"@type": _RPC + "Help", "links": [{"description": "Google developers console API activation",
                                            "url": link}]}])


def wrapped(reply: Reply) -> Reply:
    """An AI Studio answer (JSON or ``alt=sse``) as Code Assist sends it: each payload in ``response``."""
    trace = secrets.token_hex(8)
    if reply.chunks is None:
        if reply.status >= 300 or not isinstance(reply.body, dict):
            return reply
        return attrs.evolve(reply, body={"response": reply.body, "traceId": trace})
    frames = []
    for frame in reply.chunks:
        if frame.startswith(b"data: "):
            payload = jsonutil.loads(frame[6:].strip())
            frame = b"data: " + jsonutil.dumps({"response": payload, "traceId": trace}) + b"\r\n\r\n"
        frames.append(frame)
    return attrs.evolve(reply, chunks=frames)


class CodeAssistSimulator(Simulator):
    """Code Assist plus Google's OAuth endpoints; accounts live in :attr:`google`."""

    def __init__(self, models: set[str] | None = None, reply_text: str = "Hello from Code Assist.",
                 thought_text: str = "The user would like a greeting.", token_lifetime: int = 3599) -> None:
        super().__init__()
        self.models = models
        self.reply_text = reply_text
        self.thought_text = thought_text
        self.google = GoogleAccounts(token_lifetime)
        self.limits: dict[tuple[str, str], Limit] = {}
        self.operations: dict[str, tuple[GoogleAccount, str]] = {}
        #: Generate calls answered with content (not refused, not limited).
        self.served: list[Recorded] = []

    @property
    def code_assist(self) -> str:
        """What ``upstream-urls.gemini.code-assist`` is set to."""
        return f"{self.base_url}/v1internal"

    def upstream_urls(self) -> dict[str, str]:
        """Every address of the gemini provider, pointed here."""
        return {"code-assist": self.code_assist, "oauth-authorize": f"{self.base_url}/o/oauth2/auth",
                "oauth-token": f"{self.base_url}/token", "userinfo": f"{self.base_url}/oauth2/v1/userinfo?alt=json",
                "projects": f"{self.base_url}/v1/projects"}

    def config_text(self, auth_dir: Path, extra: str = "") -> str:
        """Gateway config YAML: ``auth-dir`` and every gemini address pointed here."""
        urls = "\n".join(f"    {name}: {url}" for name, url in self.upstream_urls().items())
        return f"auth-dir: {auth_dir}\nupstream-urls:\n  gemini:\n{urls}\n{extra}\n"

    def auth_data(self, email: str, projects: list[str], lifetime: float = 3000.0, live: bool | None = None,
                  **extra: Any) -> dict[str, Any]:
        """A CLIProxyAPI ``gemini-*.json`` for ``email`` (created if new) whose ``expiry`` is ``lifetime`` s away.

        The token is refused by Code Assist when ``live`` is false (default:
        when ``lifetime`` is not positive); ``extra`` adds top-level fields.
        """
        account = self.google.accounts.get(email) or self.google.add(email, projects=projects)
        expiry = datetime.fromtimestamp(time.time() + lifetime, UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
        live = lifetime > 0 if live is None else live
        return {
            "token": {"access_token": self.google.issue(email, live=live), "token_type": "Bearer",
                      "refresh_token": account.refresh_token, "expiry": expiry, "token_uri": TOKEN_URI,
                      "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scopes": list(SCOPES),
                      "universe_domain": "googleapis.com"},
            "project_id": ",".join(projects), "email": email, "auto": False, "checked": True, "type": "gemini",
            **extra,
        }

    def routes(self) -> list[web.RouteDef]:
        """Code Assist's methods, the operation poll and the OAuth endpoints."""
        return [web.post("/v1internal:{method}", self.handle), web.get("/v1internal/{name:operations/.+}", self.handle),
                web.get("/oauth2/{version}/userinfo", self.handle), web.get("/v1/projects", self.handle),
                *self.google.oauth.routes()]

    def limit(self, project: str, model: str, kind: str, seconds: float, retry_delay: float | None = None) -> Limit:
        """From now on, for ``seconds``, ``model`` (``"*"``: every model) on ``project`` answers with a
        ``kind`` limit (see :func:`limit_reply`)."""
        entry = self.limits[(project, model)] = Limit(kind, time.time() + seconds, retry_delay)
        return entry

    def generated(self, project: str | None = None) -> list[Recorded]:
        """The generate calls that were answered with content (optionally for one project)."""
        return [r for r in self.served if project is None or r.json().get("project") == project]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record the request and answer it (the script only ever answers generate calls)."""
        recorded = Recorded(method=request.method, path=request.path, query=dict(request.query),
                            headers={k.lower(): v for k, v in request.headers.items()}, body=await request.read())
        self.requests.append(recorded)
        return await self.play(request, self.answer(recorded))

    def answer(self, recorded: Recorded) -> Reply:
        """Route one request to its endpoint."""
        path = recorded.path
        if path.endswith("/userinfo"):
            return self.google.userinfo(recorded)
        if path == "/v1/projects":
            return self.google.projects(recorded)
        account = self.google.account_for(recorded)
        if account is None:
            return status_reply(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected "
                                "OAuth 2 access token, login cookie or other valid authentication credential.")
        if path.startswith("/v1internal/operations/"):
            return self._operation(path.removeprefix("/v1internal/"))
        method = path.partition(":")[2]
        try:
            body = recorded.json()
        except ValueError:
            return status_reply(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not isinstance(body, dict):
            return status_reply(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Expected an object.")
        if method == "loadCodeAssist":
            return self._load(account, body)
        if method == "onboardUser":
            return self._onboard(account, body)
        if method == "countTokens":
            return self._count(body)
        if method in ("generateContent", "streamGenerateContent"):
            return self._generate(recorded, account, body, method == "streamGenerateContent")
        return status_reply(404, "NOT_FOUND", f"Method not found: {method}")

    # -- setup ----------------------------------------------------------------------

    def _tiers(self, account: GoogleAccount) -> list[dict[str, Any]]:
        return [{"id": account.tier, "name": account.tier.replace("-", " ").title(), "isDefault": True,
                 "userDefinedCloudaicompanionProject": account.tier != "free-tier"}]

    def _load(self, account: GoogleAccount, body: dict[str, Any]) -> Reply:
        if not isinstance(body.get("metadata"), dict):
            return status_reply(400, "INVALID_ARGUMENT", "metadata is required")
        answer: dict[str, Any] = {"allowedTiers": self._tiers(account)}
        if account.ineligible is not None:
            answer = {"ineligibleTiers": [account.ineligible]}
        elif account.onboarded:
            answer["currentTier"] = self._tiers(account)[0]
            answer["cloudaicompanionProject"] = account.project
        return Reply.json(answer)

    def _onboard(self, account: GoogleAccount, body: dict[str, Any]) -> Reply:
        project = body.get("cloudaicompanionProject")
        if body.get("tierId") != account.tier or not isinstance(body.get("metadata"), dict):
            return status_reply(400, "INVALID_ARGUMENT", f"Invalid tier: {body.get('tierId')!r}")
        if account.tier == "free-tier" and project:
            return status_reply(400, "FAILED_PRECONDITION", "Precondition Failed")
        if account.tier != "free-tier" and project not in account.projects:
            return status_reply(403, "PERMISSION_DENIED", f"Permission denied on project {project!r}")
        pending = next((n for n, (a, _) in self.operations.items() if a is account), None)
        if pending is not None:  # a re-POST polls the operation already running
            return self._operation(pending)
        name = f"operations/onboard-{next(_ops)}"
        self.operations[name] = (account, str(project or f"managed-{secrets.token_hex(3)}"))
        return Reply.json({"name": name, "done": False})

    def _operation(self, name: str) -> Reply:
        found = self.operations.pop(name, None)
        if found is None:
            return status_reply(404, "NOT_FOUND", f"Operation {name} not found")
        account, project = found
        account.onboarded, account.project = True, project
        return Reply.json({"name": name, "done": True, "response": {
            "@type": "type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse",
            "cloudaicompanionProject": {"id": project, "name": project}}})

    # -- generate ---------------------------------------------------------------------

    def _count(self, body: dict[str, Any]) -> Reply:
        request = body.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("contents"), list):
            return status_reply(400, "INVALID_ARGUMENT", "request.contents is required")
        # One token per word and one per content: easy to tell from any byte-based estimate.
        contents = [c for c in request["contents"] if isinstance(c, dict)]
        words = sum(len(str(p.get("text", "")).split()) for c in contents for p in c.get("parts") or []
                    if isinstance(p, dict))
        return Reply.json({"totalTokens": words + len(contents)})

    def _generate(self, recorded: Recorded, account: GoogleAccount, body: dict[str, Any], stream: bool) -> Reply:
        model, project, request = body.get("model"), body.get("project"), body.get("request")
        if not isinstance(model, str) or not model or not isinstance(request, dict):
            return status_reply(400, "INVALID_ARGUMENT", "Invalid JSON payload: model and request are required.")
        if not isinstance(project, str) or not project:
            return status_reply(400, "INVALID_ARGUMENT", "Invalid project resource name: projects/")
        if project not in (account.project, *account.projects):
            return status_reply(403, "PERMISSION_DENIED", f"Permission 'cloudaicompanion.companions.generateChat' "
                                f"denied on resource '//cloudaicompanion.googleapis.com/projects/{project}/locations/"
                                "global' (or it may not exist).")
        if self.models is not None and model not in self.models:
            return status_reply(404, "NOT_FOUND", f"Requested entity was not found: models/{model}")
        problem = code_assist_problem(request, model) or request_problem(request, model)
        if problem:
            return status_reply(400, "INVALID_ARGUMENT", problem)
        held = self.limits.get((project, model)) or self.limits.get((project, "*"))
        if held is not None and held.until > time.time():
            held.early += 1
            return limit_reply(held.kind, model, held.until - time.time(), project, held.retry_delay)
        self.served.append(recorded)
        reply = self.script.popleft() if self.script else self._answer(model, request, stream)
        return wrapped(reply)

    def _answer(self, model: str, request: dict[str, Any], stream: bool) -> Reply:
        thinking = (request.get("generationConfig") or {}).get("thinkingConfig") or {}
        thought = self.thought_text if thinking.get("includeThoughts") else None
        chunks = answer_chunks(model, text_pieces(self.reply_text), thought)
        if stream:
            return Reply.sse([b"data: " + jsonutil.dumps(c) + b"\r\n\r\n" for c in chunks])
        parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
        text = [p for p in parts if not p.get("thought")]
        merged = {"text": "".join(p["text"] for p in text)}
        if text and "thoughtSignature" in text[0]:
            merged["thoughtSignature"] = text[0]["thoughtSignature"]
        body = response_chunk(model, [*[p for p in parts if p.get("thought")], merged],
                              usage(len(text), 5 if thought else 0), chunks[0]["responseId"], "STOP")
        return Reply.json(body)
