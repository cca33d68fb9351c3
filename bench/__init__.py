"""polyrelay benchmark suite: ``python -m bench`` (full) or ``python -m bench --smoke``.

The orchestrator (:mod:`bench.__main__`) starts a fast OpenAI-compatible
upstream simulator (:mod:`bench.upstream`), the gateway under test and, for
the throughput comparison, LiteLLM; it drives them with a raw-asyncio load
generator running in its own process (:mod:`bench.load`) and writes
``bench/results/latest.md`` and ``bench/results/latest.json``.
"""

from __future__ import annotations

__all__ = ["SCENARIOS"]

#: Scenario names accepted by ``--only`` (in the order they run).
SCENARIOS = ("cold-start", "latency", "large-body", "streaming", "translation", "throughput", "memory")
