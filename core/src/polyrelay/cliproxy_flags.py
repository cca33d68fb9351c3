"""CLIProxyAPI's command line, as aliases of polyrelay's subcommands.

CLIProxyAPI takes Go-style flags (``-config FILE``, ``--claude-login``,
``-oauth-callback-port=N``) and no subcommand, so scripts and service files
written for it carry over: a command line made only of options is
rewritten here, before argparse sees it, into ``serve ...`` or
``login <provider> ...``.  A command line that starts with a subcommand is
polyrelay's own and is left alone.
"""

from __future__ import annotations

#: Login flags → the provider (and extra options) of ``polyrelay login``.
LOGINS: dict[str, list[str]] = {
    "claude-login": ["claude"],
    "codex-login": ["codex"],
    "codex-device-login": ["codex", "--device"],
    "login": ["gemini"],
    "qwen-login": ["qwen"],
}
#: Flags that take a value → polyrelay's option.
VALUED = {"config": "--config", "oauth-callback-port": "--port", "project_id": "--project-id"}
#: Flags without a value → polyrelay's option.
SWITCHES = {"no-browser": "--no-browser"}


def _split(arg: str) -> tuple[str, str | None] | None:
    """``-name`` / ``--name`` / ``-name=value`` → (name, value); None for a non-flag."""
    if not arg.startswith("-") or arg in ("-", "--"):
        return None
    name, eq, value = arg.lstrip("-").partition("=")
    return name, (value if eq else None)


def translate(argv: list[str]) -> list[str]:
    """polyrelay's argv for a CLIProxyAPI-style one; any other argv unchanged.

    Raises nothing: a flag it does not know is passed on for argparse to
    report in its usual way.
    """
    if argv and not argv[0].startswith("-"):
        # polyrelay's own subcommand; only ``-config`` needs care, which argparse would read as ``-c onfig``.
        return [("--" + arg[1:]) if arg == "-config" or arg.startswith("-config=") else arg for arg in argv]
    if not argv:
        return argv
    login: list[str] | None = None
    options: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        split = _split(arg)
        if split is None:
            rest.append(arg)
            continue
        name, value = split
        if name in LOGINS and value is None:
            login = login or LOGINS[name]
        elif name in VALUED:
            value = value if value is not None else next(args, "")
            options += [VALUED[name], value]
        elif name in SWITCHES and value is None:
            options.append(SWITCHES[name])
        else:
            rest.append(arg)
    if login is not None:
        return ["login", *login, *options, *rest]
    return ["serve", *options, *rest] if options else argv
