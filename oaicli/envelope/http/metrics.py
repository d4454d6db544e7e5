"""`GET /metrics` for serve: request counts and latency histograms in Prometheus's text format (0.0.4).

The added latency (total - waiting for the context's earlier requests - upstream) is what an operator
watches to see serve's own cost without a benchmark. Labels hold only the fixed outcome names below,
never ids from requests, so the number of series is bounded and nothing from a client needs escaping."""

import bisect

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds. Added latency is small (goal: p99 under 25 ms); upstream answers take from 50 ms to minutes.
ADDED_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
OUTCOMES = {200: "ok", 400: "rejected", 401: "unauthorized", 413: "too_long", 502: "upstream_failed",
            503: "stopping", 504: "upstream_timeout"}


def outcome_for(status: int) -> str:
    """The outcome label of an HTTP status serve answered with (500 and anything unexpected: internal)."""
    return OUTCOMES.get(status, "internal")


class Histogram:
    def __init__(self, buckets: tuple):
        self.bounds = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip((*map(_number, self.bounds), "+Inf"), self.counts):
            running += count
            out.append(f'{name}_bucket{{{labels}{"," if labels else ""}le="{bound}"}} {running}')
        braces = f"{{{labels}}}" if labels else ""
        return out + [f"{name}_sum{braces} {_number(self.sum)}", f"{name}_count{braces} {running}"]


class Metrics:
    """Everything /metrics reports; `observe` is called once per answered request, on the event loop."""

    def __init__(self, in_flight=lambda: 0, contexts=lambda: 0):
        self.in_flight = in_flight
        self.contexts = contexts
        self.requests: dict[str, int] = {}
        self.added: dict[str, Histogram] = {}
        self.queued = Histogram(ADDED_BUCKETS + UPSTREAM_BUCKETS[5:])
        self.upstream = Histogram(UPSTREAM_BUCKETS)

    def observe(self, status: int, total: float, queued: float = 0.0, upstream: float = 0.0) -> None:
        outcome = outcome_for(status)
        self.requests[outcome] = self.requests.get(outcome, 0) + 1
        histogram = self.added.get(outcome)
        if histogram is None:
            histogram = self.added[outcome] = Histogram(ADDED_BUCKETS)
        histogram.observe(max(total - queued - upstream, 0.0))
        self.queued.observe(queued)
        if upstream:
            self.upstream.observe(upstream)

    def render(self) -> str:
        lines = ["# HELP oaicli_envelope_requests_total Envelope requests answered, by outcome.",
                 "# TYPE oaicli_envelope_requests_total counter"]
        lines += [f'oaicli_envelope_requests_total{{outcome="{o}"}} {n}' for o, n in sorted(self.requests.items())]
        lines += ["# HELP oaicli_envelope_added_seconds Time serve added: total minus queue minus upstream.",
                  "# TYPE oaicli_envelope_added_seconds histogram"]
        for outcome, histogram in sorted(self.added.items()):
            lines += histogram.lines("oaicli_envelope_added_seconds", f'outcome="{outcome}"')
        lines += ["# HELP oaicli_envelope_queue_seconds Time waiting for the same context's earlier requests.",
                  "# TYPE oaicli_envelope_queue_seconds histogram"]
        lines += self.queued.lines("oaicli_envelope_queue_seconds", "")
        lines += ["# HELP oaicli_envelope_upstream_seconds Time spent waiting for the API.",
                  "# TYPE oaicli_envelope_upstream_seconds histogram"]
        lines += self.upstream.lines("oaicli_envelope_upstream_seconds", "")
        lines += ["# HELP oaicli_envelope_in_flight Requests received and not yet answered.",
                  "# TYPE oaicli_envelope_in_flight gauge", f"oaicli_envelope_in_flight {self.in_flight()}",
                  "# HELP oaicli_envelope_contexts Contexts with a request in flight or queued.",
                  "# TYPE oaicli_envelope_contexts gauge", f"oaicli_envelope_contexts {self.contexts()}"]
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return repr(float(value))
