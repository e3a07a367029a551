"""Prometheus metrics (``GET /metrics``). Never PHI: labels are route templates, projection
names, pool names and fixed outcome words; no id, path or value from a request.

Two kinds:

* **counted in the process** (cheap, on the hot path): request latency by method, route
  template and status; the writer's batch size and commit time. With ``ledger serve --workers
  N`` the workers share them through PROMETHEUS_MULTIPROC_DIR (set by ``serve``).
* **read from the database at scrape time** (a few indexed queries, only when scraped):
  projection lag per view, the unsealed backlog, import outcomes, open work-queue items,
  database pool use. A scrape that cannot reach the database reports
  ``ledger_database_up 0`` instead of failing.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    ProcessCollector(registry=REGISTRY)

REQUEST_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_NAME = "ledger_http_request_duration_seconds"
REQUEST_HELP = "HTTP request latency by route template and status."


class _RequestHistogram(Collector):
    """The request-latency histogram, kept as plain lists: one bisect and two additions per
    request (prometheus_client's Histogram takes a lock and walks every bucket). Written only
    by the event loop's thread; a scrape reads a consistent-enough copy."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        row = self.data.get(key)
        if row is None:
            row = self.data[key] = [0] * (len(REQUEST_BUCKETS) + 1) + [0.0]
        row[bisect_left(REQUEST_BUCKETS, seconds)] += 1
        row[-1] += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(REQUEST_NAME, REQUEST_HELP,
                                       labels=["method", "route", "status"])
        for (method, route, status), row in list(self.data.items()):
            row = list(row)
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, REQUEST_BUCKETS), "+Inf"), row[:-1],
                                    strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric([method, route, str(status)], buckets, sum_value=row[-1])
        yield family


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # several worker processes: prometheus_client's file-backed values, summed at scrape
    _REQUESTS = Histogram(REQUEST_NAME, REQUEST_HELP, ["method", "route", "status"],
                          registry=REGISTRY, buckets=REQUEST_BUCKETS)
    _children: dict[tuple[str, str, int], Any] = {}

    def observe_request(method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = _children.get(key)
        if child is None:
            child = _children[key] = _REQUESTS.labels(method, route, str(status))
        child.observe(seconds)
else:
    _REQUESTS_FAST = _RequestHistogram()
    REGISTRY.register(_REQUESTS_FAST)
    observe_request = _REQUESTS_FAST.observe

WRITER_BATCH = Histogram(
    "ledger_writer_batch_commands", "Commands saved per group-commit transaction.",
    registry=REGISTRY, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
WRITER_COMMIT_SECONDS = Histogram(
    "ledger_writer_commit_seconds", "Time to save one group-commit batch (one transaction).",
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0))
EXCEPTIONS = Counter(
    "ledger_http_unhandled_exceptions", "Requests that ended in an unhandled exception (500).",
    ["route"], registry=REGISTRY)

def observe_batch(commands: int, seconds: float) -> None:
    WRITER_BATCH.observe(commands)
    WRITER_COMMIT_SECONDS.observe(seconds)


# ------------------------------------------------------------------------ scrape time
class DatabaseCollector(Collector):
    """Gauges read from the database when scraped. ``pools``: name -> psycopg_pool pool;
    ``positions``: reads each projection's tracked position on a connection (the read
    side's, e.g. ``ledger.projections.queries.projection_positions``)."""

    def __init__(self, connect: Callable[[], Any], pools: dict[str, Any],
                 positions: Callable[[Any], dict[str, int]]) -> None:
        self.connect = connect
        self.pools = pools
        self.positions = positions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool_use = GaugeMetricFamily("ledger_db_pool_connections",
                                     "Database pool connections by state.",
                                     labels=["pool", "state"])
        for name, pool in self.pools.items():
            if pool is None:
                continue
            stats = pool.get_stats()
            size = stats.get("pool_size", 0)
            idle = stats.get("pool_available", 0)
            pool_use.add_metric([name, "open"], size)
            pool_use.add_metric([name, "idle"], idle)
            pool_use.add_metric([name, "in_use"], max(size - idle, 0))
            pool_use.add_metric([name, "waiting"], stats.get("requests_waiting", 0))
            pool_use.add_metric([name, "max"], pool.max_size)
        yield pool_use
        up = GaugeMetricFamily("ledger_database_up", "1 if the scrape could read the database.")
        try:
            families = list(self._from_database())
        except Exception as exc:  # noqa: BLE001 - a scrape must answer; say the database is down
            log.warning("metrics: database unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_database(self) -> Iterator[GaugeMetricFamily]:
        with self.connect() as conn, conn.transaction():
            conn.execute("SET LOCAL statement_timeout = '2s'")
            head = conn.execute("SELECT COALESCE(max(notification_id), 0) FROM ledger_events"
                                ).fetchone()[0]
            g = GaugeMetricFamily("ledger_log_head", "Notification id of the newest event.")
            g.add_metric([], head)
            yield g
            positions = self.positions(conn)
            lag = GaugeMetricFamily("ledger_projection_lag_events", "Log head minus the "
                                    "projection's position (events not yet applied, at most).",
                                    labels=["projection"])
            pos = GaugeMetricFamily("ledger_projection_position", "Log position applied.",
                                    labels=["projection"])
            for name, position in positions.items():
                lag.add_metric([name], max(head - position, 0))
                pos.add_metric([name], position)
            yield lag
            yield pos
            failing = GaugeMetricFamily(
                "ledger_projection_failing", "1 if the projection's last error is newer than "
                "its last page.", labels=["projection"])
            for name, error_at, page_at in conn.execute(
                    "SELECT name, last_error_at, last_page_at FROM projection_status"):
                failing.add_metric([name], int(error_at is not None and (
                    page_at is None or error_at >= page_at)))
            yield failing
            row = conn.execute("SELECT last_position, tree_size, extract(epoch FROM now() - "
                               "created_at) FROM ledger_checkpoints ORDER BY tree_size DESC "
                               "LIMIT 1").fetchone()
            sealed, size, age = (row[0], row[1], float(row[2])) if row else (0, 0, None)
            g = GaugeMetricFamily("ledger_unsealed_events", "Events after the latest signed "
                                  "checkpoint (log head minus its last position).")
            g.add_metric([], max(head - sealed, 0))
            yield g
            if self._exists_column(conn, "ledger_events", "recorded_at"):
                oldest = conn.execute(
                    "SELECT extract(epoch FROM clock_timestamp() - recorded_at) FROM "
                    "ledger_events WHERE notification_id > %s AND recorded_at IS NOT NULL "
                    "ORDER BY notification_id LIMIT 1", (sealed,)).fetchone()
                g = GaugeMetricFamily("ledger_unsealed_oldest_age_seconds", "Age of the oldest "
                                      "event after the latest signed checkpoint (0: none; a "
                                      "batch is sealed within LEDGER_SEAL_MAX_DELAY).")
                g.add_metric([], float(oldest[0]) if oldest else 0.0)
                yield g
            g = GaugeMetricFamily("ledger_checkpoint_tree_size", "Events under the latest "
                                  "signed checkpoint.")
            g.add_metric([], size)
            yield g
            if age is not None:
                g = GaugeMetricFamily("ledger_checkpoint_age_seconds",
                                      "Seconds since the latest checkpoint was signed.")
                g.add_metric([], age)
                yield g
            yield from self._imports(conn)
            yield from self._open_items(conn)

    @staticmethod
    def _exists_column(conn: Any, table: str, column: str) -> bool:
        return conn.execute("SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE "
                            "table_name = %s AND column_name = %s)", (table, column)
                            ).fetchone()[0]

    @staticmethod
    def _exists(conn: Any, table: str) -> bool:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]

    def _imports(self, conn: Any) -> Iterator[GaugeMetricFamily]:
        if not self._exists(conn, "x12_remittances"):
            return
        g = GaugeMetricFamily("ledger_x12_import_outcomes", "X12 import outcomes recorded in "
                              "the database (posted remittances, quarantined files by kind, "
                              "unmatched claims, applied acknowledgement files).",
                              labels=["outcome", "kind"])
        g.add_metric(["posted", "835"],
                     conn.execute("SELECT count(*) FROM x12_remittances").fetchone()[0])
        for kind, count in conn.execute(
                "SELECT kind, count(*) FROM x12_quarantine GROUP BY kind ORDER BY kind"):
            g.add_metric(["quarantined", str(kind)], count)
        g.add_metric(["unmatched_claims", "835"],
                     conn.execute("SELECT count(*) FROM x12_unmatched").fetchone()[0])
        if self._exists(conn, "x12_acknowledgements"):
            g.add_metric(["applied", "ack"], conn.execute(
                "SELECT count(*) FROM x12_acknowledgements").fetchone()[0])
        yield g

    def _open_items(self, conn: Any) -> Iterator[GaugeMetricFamily]:
        """Open exceptions: the X12 exceptions queue (``x12_exceptions``, where the release
        has it) and the work queue's denials, rejections and disputes."""
        g = GaugeMetricFamily("ledger_exceptions_open", "Open exceptions by queue (x12: "
                              "the X12 exceptions queue; work: denials, rejections, disputes) "
                              "and kind.", labels=["queue", "kind"])
        if self._exists(conn, "x12_exceptions"):
            for kind, count in conn.execute(
                    "SELECT kind, count(*) FROM x12_exceptions WHERE status = 'open' "
                    "GROUP BY kind ORDER BY kind"):
                g.add_metric(["x12", str(kind)], count)
        if self._exists(conn, "work_queue"):
            for kind, count in conn.execute(
                    "SELECT item_kind, count(*) FROM work_queue WHERE status <> 'resolved' "
                    "GROUP BY item_kind ORDER BY item_kind"):
                g.add_metric(["work", str(kind)], count)
        yield g


def render(collector: DatabaseCollector | None) -> tuple[bytes, str]:
    """The exposition text: the process (or all workers') metrics, then the database's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if collector is not None:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(collector)
        body += generate_latest(scrape)
    return body, CONTENT_TYPE_LATEST
