"""Reading a real instance's /metrics: scrape it and look samples up by name and labels."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when it is absent (a labelled counter not yet incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for_metric(port: int, check: Callable[[Samples], bool], within: float = 20.0) -> Samples:
    """Scrape until `check` holds (state gauges are sampled, sockets close asynchronously)."""
    deadline = time.monotonic() + within
    while True:
        samples = scrape(port)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, "metrics never reached the expected values"
        time.sleep(0.1)

