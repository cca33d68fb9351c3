"""Values from clients in upstream URLs: model names checked, path segments encoded.

A model name travels into an upstream URL (Gemini's ``models/{model}:...``,
account kinds with the model in the path).  yarl resolves ``..``, honours
``?`` and cuts at ``#``, so a raw name could aim the operator's key at any
path.  Two rules close that, each in one place:

* :func:`model_name_problem` rejects a name that does not look like a model
  name before it is routed (a 400 in the client's dialect);
* :func:`path_segment` / :func:`join_path` percent-encode every value put
  into a URL path as exactly one segment, so even a name that passed the
  check cannot add a segment, a query or a fragment.
"""

from __future__ import annotations

import re
from urllib.parse import quote

#: What a model name looks like after an optional ``provider/`` prefix:
#: letters, digits and ``. _ - + @ :`` (``:free``, ``llama3:8b``), starting
#: with a letter or digit.  No ``/``, ``%``, ``?``, ``#``, space or control
#: character, so neither a path, an escape nor a query can hide in one.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@:-]{0,199}")


def model_name_problem(name: str, served: frozenset[str] | set[str] = frozenset()) -> str | None:
    """Why ``name`` cannot be a model name, or None when it can.

    Names in ``served`` (what the gateway's providers and aliases list) are
    accepted as they are: the operator wrote them.  Any other name may have
    one ``provider/`` prefix and must otherwise match the model-name shape.
    """
    if name in served:
        return None
    if not name:
        return "the model name is empty"
    prefix, slash, rest = name.partition("/")
    parts = [prefix, rest] if slash else [prefix]
    if slash and "/" in rest:
        return "a model name may have one 'provider/' prefix, not a path"
    for part in parts:
        if ".." in part:
            return "a model name cannot contain '..'"
        if not _NAME.fullmatch(part):
            return "a model name is letters, digits and '.', '_', '-', '+', '@', ':' (after an optional 'provider/')"
    return None


def path_segment(value: str) -> str:
    """``value`` percent-encoded as one URL path segment (``/ ? # %`` included).

    ``.`` and ``..`` alone are refused: encoded or not, URL resolution
    treats them as "this" and "parent" directory.
    """
    if value in (".", ".."):
        raise ValueError(f"{value!r} cannot be a URL path segment")
    return quote(value, safe="")


def join_path(base: str, *segments: str, suffix: str = "") -> str:
    """``base`` + ``/segment`` for each segment (each encoded), then ``suffix`` as it is.

    ``suffix`` is the caller's own constant text (``":generateContent"``,
    ``"?alt=sse"``), never a client value.
    """
    return base.rstrip("/") + "".join("/" + path_segment(s) for s in segments) + suffix
