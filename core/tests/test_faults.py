"""Upstream faults end to end: deadlines, garbage, cut streams, aborts, hints.

Everything runs against the real gateway over loopback with
:class:`polyrelay.testing.faults.FaultUpstream` as every upstream dialect.
"""

from __future__ import annotations

import itertools

import pytest

from polyrelay import ir
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import ask
from polyrelay.testing.faults import FaultUpstream, fault_model, fault_plugin

PAIRS = list(itertools.product(ir.DIALECTS, ir.DIALECTS))


@pytest.fixture
async def fault():
    async with FaultUpstream() as upstream:
        yield upstream


@pytest.mark.parametrize(("client", "upstream"), PAIRS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_fault_upstream_answers_every_dialect_correctly_by_default(fault, polyrelay_http, client, upstream,
        stream):
    async with run_gateway(extra_plugins=[("fault", fault_plugin(fault))]) as gw:
        answer = await ask(polyrelay_http, gw.url, client, fault_model(upstream), "hi", stream=stream)
    assert answer.status == 200, answer.body
    assert "Hello from the fault upstream." in answer.text
    assert answer.terminal and not answer.stream_error
