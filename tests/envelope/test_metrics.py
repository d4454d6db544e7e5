"""serve's /metrics text: counts by outcome, the added latency histogram, Prometheus's text format."""

import re

import pytest

from oaicli.envelope.http import metrics as metrics_module

SAMPLE = re.compile(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$')


def parse(text: str) -> dict:
    """{(name, labels): value} for every sample line; every other line must be a HELP or TYPE comment."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("# "):
            assert re.match(r"^# (HELP|TYPE) oaicli_envelope_[a-z_]+ ", line), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples


@pytest.fixture
def metrics():
    return metrics_module.Metrics(in_flight=lambda: 3, contexts=lambda: 2)


def test_requests_are_counted_by_outcome(metrics):
    for status in (200, 200, 200, 400, 502, 504, 500, 418):
        metrics.observe(status, total=0.3, queued=0.0, upstream=0.25)
    samples = parse(metrics.render())
    counted = {labels: value for (name, labels), value in samples.items() if name == "oaicli_envelope_requests_total"}
    assert counted == {'outcome="ok"': 3, 'outcome="rejected"': 1, 'outcome="upstream_failed"': 1,
                       'outcome="upstream_timeout"': 1, 'outcome="internal"': 2}
    assert samples[("oaicli_envelope_in_flight", "")] == 3 and samples[("oaicli_envelope_contexts", "")] == 2


def test_the_added_latency_is_total_minus_queue_and_upstream(metrics):
    metrics.observe(200, total=0.2040, queued=0.0, upstream=0.2000)  # 4 ms added
    metrics.observe(200, total=0.5200, queued=0.3000, upstream=0.2000)  # 20 ms added
    samples = parse(metrics.render())

    def bucket(le):
        return samples[("oaicli_envelope_added_seconds_bucket", f'outcome="ok",le="{le}"')]
    assert (bucket("0.0025"), bucket("0.005"), bucket("0.01"), bucket("0.025"), bucket("+Inf")) == (0, 1, 1, 2, 2)
    assert samples[("oaicli_envelope_added_seconds_count", 'outcome="ok"')] == 2
    assert samples[("oaicli_envelope_added_seconds_sum", 'outcome="ok"')] == pytest.approx(0.024)
    assert samples[("oaicli_envelope_queue_seconds_sum", "")] == pytest.approx(0.3)
    assert samples[("oaicli_envelope_upstream_seconds_count", "")] == 2


def test_buckets_are_cumulative_and_end_with_inf(metrics):
    for seconds in (0.0001, 0.003, 0.04, 0.7, 5.0):
        metrics.observe(200, total=seconds)
    samples = parse(metrics.render())
    buckets = [(labels, value) for (name, labels), value in samples.items()
               if name == "oaicli_envelope_added_seconds_bucket"]
    values = [value for _, value in buckets]
    assert values == sorted(values) and values[-1] == 5
    assert buckets[-1][0].endswith('le="+Inf"')
    assert metrics_module.CONTENT_TYPE.startswith("text/plain; version=0.0.4")
    text = metrics.render()
    for name in ("oaicli_envelope_queue_seconds", "oaicli_envelope_upstream_seconds"):
        bounds = re.findall(rf'^{name}_bucket{{le="([^"]+)"}}', text, re.M)
        assert len(bounds) > 5 and len(bounds) == len(set(bounds))  # no bucket bound twice


def test_nothing_observed_is_still_valid_text(metrics):
    samples = parse(metrics.render())
    assert samples[("oaicli_envelope_upstream_seconds_count", "")] == 0
    assert not any(name == "oaicli_envelope_requests_total" for name, _ in samples)
