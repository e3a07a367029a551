"""The request-latency histogram (ledger.metrics): the in-process fast path renders correct
cumulative Prometheus buckets; with PROMETHEUS_MULTIPROC_DIR (ledger serve --workers N) the
observations of several processes are summed in one scrape."""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ledger import metrics


def _samples(text: str, name: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_fast_histogram_buckets_are_cumulative_with_sum_and_count():
    hist = metrics._RequestHistogram()
    for seconds in (0.001, 0.002, 0.003, 0.3, 20.0):
        hist.observe("GET", "/claims", 200, seconds)
    hist.observe("POST", "/encounters", 201, 0.004)
    registry = CollectorRegistry()
    registry.register(hist)
    got = _samples(generate_latest(registry).decode(), metrics.REQUEST_NAME)
    labels = (("method", "GET"), ("route", "/claims"), ("status", "200"))

    def bucket(le: str) -> float:
        return got[(metrics.REQUEST_NAME + "_bucket", tuple(sorted((*labels, ("le", le)))))]

    assert bucket("0.002") == 2  # 0.001 and 0.002 (le is inclusive)
    assert bucket("0.005") == 3
    assert bucket("0.25") == 3 and bucket("0.5") == 4
    assert bucket("10.0") == 4 and bucket("+Inf") == 5
    assert got[(metrics.REQUEST_NAME + "_count", labels)] == 5
    assert abs(got[(metrics.REQUEST_NAME + "_sum", labels)] - 20.306) < 1e-9


def test_worker_processes_are_summed_in_one_scrape(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = ("from ledger import metrics; metrics.observe_request('GET', '/claims', 200, 0.01);"
            "metrics.observe_batch(3, 0.002)")
    for _ in range(2):  # two "workers"
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    scrape = ("from ledger import metrics; import sys;"
              "sys.stdout.write(metrics.render(None)[0].decode())")
    text = subprocess.run([sys.executable, "-c", scrape], env=env, check=True, timeout=60,
                          capture_output=True, text=True).stdout
    got = _samples(text, metrics.REQUEST_NAME)
    labels = (("method", "GET"), ("route", "/claims"), ("status", "200"))
    assert got[(metrics.REQUEST_NAME + "_count", labels)] == 2
    batches = _samples(text, "ledger_writer_batch_commands")
    assert batches[("ledger_writer_batch_commands_sum", ())] == 6
