"""One demo stack for the end-to-end tests: analyzer + five instrumented services on free ports."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from chainotel.cli.demo import Stack, load_traffic

REQUESTS = 150  # 12-request mix cycles: ≥ 12 traces of each chain, ≥ 37 of A2
SLOW = "ai-provider:200ms"


@pytest.fixture(scope="package")
def demo_run(tmp_path_factory):
    """Start the stack, drive REQUESTS flows (8 in flight, ≤ 120 s), wait until every successful
    request's trace is readable, yield ``(stack, results, since)``; stop every process afterwards."""
    traffic = load_traffic()
    stack = Stack(tmp_path_factory.mktemp("demo"), mode="chainotel", free_ports=True, slow=SLOW, error_rate=0.02, seed=7)
    with stack:
        since = int(time.time()) - 5
        results = asyncio.run(traffic.drive(stack.entry(), REQUESTS, 8, deadline_s=120))
        deadline = time.monotonic() + 60
        pending = [r.instance_id for r in results if r.ok]
        with httpx.Client(base_url=stack.analyzer_url, timeout=10) as client:
            def stored(cid: str) -> bool:
                response = client.get(f"/api/v1/chains/events/{cid}")
                return response.status_code == 200 and bool(response.json().get("events"))

            while pending and time.monotonic() < deadline:
                pending = [cid for cid in pending if not stored(cid)]
                if pending:
                    time.sleep(0.5)
        yield stack, results, since


@pytest.fixture(scope="package")
def api(demo_run):
    stack, _, _ = demo_run
    with httpx.Client(base_url=stack.analyzer_url, timeout=30) as client:
        yield client
