"""Input-token counts from the upstream, for the count routes.

A provider that can count (``Provider.count_tokens``) is asked with a
ready credential of its own; the answer is an integer or None.  Anything
else (no counter, no ready credential, an error, a timeout) yields None,
and the route falls back to its local estimate.
"""

from __future__ import annotations

import asyncio
import logging

from polyrelay.credentials import Pool
from polyrelay.plugins import Binding
from polyrelay.types import ClientRequest
from polyrelay.upstream import Sessions

log = logging.getLogger("polyrelay.counting")

COUNT_TIMEOUT = 30.0


async def upstream_count(
    targets: list[tuple[Binding, str]], pool: Pool, sessions: Sessions, client: ClientRequest
) -> int | None:
    """The first upstream count among ``targets`` (the routed ``(binding, upstream model)`` pairs)."""
    for binding, model in targets:
        provider = binding.provider
        counter = provider.count_tokens
        if counter is None:
            continue
        candidates = pool.candidates([(provider.name, model)])
        if not candidates:
            continue
        credential = pool.choose(candidates, f"{provider.name}:{client.model}:count")
        session, _ = sessions.get(credential.proxy_url)
        try:
            async with asyncio.timeout(COUNT_TIMEOUT):
                tokens = await counter(client.for_attempt(model), credential, session, provider)
        except Exception as exc:  # the estimate is always there to fall back on
            log.info("upstream token count via %s failed (%s); using the estimate", provider.name,
                     exc.__class__.__name__)
            continue
        if tokens is not None:
            return tokens
    return None
