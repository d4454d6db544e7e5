"""`oaicli usage` and `oaicli costs` against the loopback fake's organization endpoints (admin key only)."""

import json

import pytest

ADMIN_KEY = "sk-admin-usage-0123456789abcdef"


@pytest.fixture
def admin(fake, monkeypatch):
    fake.state["admin_keys"] = [ADMIN_KEY]
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    return fake


def test_usage_per_day_and_model_with_tokens_in_and_out(invoke, admin):
    rows = json.loads(invoke("usage", "--days", "3", "--format", "json").stdout)
    # The fake reports two models a day; day n (from 0) has 1000*(n+1)*(i+1) tokens in for model i.
    assert [(r["model"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        ("gpt-4.1", 2000, 500), ("gpt-4o-mini", 1000, 250), ("gpt-4.1", 4000, 1000), ("gpt-4o-mini", 2000, 500),
        ("gpt-4.1", 6000, 1500), ("gpt-4o-mini", 3000, 750)]
    assert len({r["day"] for r in rows}) == 3
    (call, *_) = admin.calls("GET", "/v1/organization/usage/completions")
    assert call.headers["authorization"] == f"Bearer {ADMIN_KEY}"
    assert call.query["group_by"] == "model" and call.query["bucket_width"] == "1d"


def test_usage_follows_the_pages_of_buckets(invoke, admin):
    rows = json.loads(invoke("usage", "--days", "40", "--group-by", "day", "--format", "json").stdout)
    assert len(rows) == 40 and [r["requests"] for r in rows][:3] == [5, 10, 15]
    assert len(admin.calls("GET", "/v1/organization/usage/completions")) == 2  # 31 buckets, then 9


def test_usage_by_day_carries_the_cost_and_the_table_ends_with_totals(invoke, admin):
    table = invoke("usage", "--days", "2", "--group-by", "day", "--format", "table").stdout.splitlines()
    assert table[0].split() == ["day", "requests", "input_tokens", "output_tokens", "cached_tokens", "cost_usd"]
    assert table[-1].split() == ["total", "15", "3000", "750", "300", "0.75"]


def test_costs_per_line_item_as_jsonl(invoke, admin):
    lines = [json.loads(line) for line in invoke("costs", "--days", "1", "--format", "jsonl").stdout.splitlines()]
    assert [(r["line_item"], r["cost_usd"]) for r in lines] == [("Completions, input", 0.25),
                                                                 ("Completions, output", 0.5)]


def test_costs_table_total(invoke, admin):
    table = invoke("costs", "--days", "3", "--group-by", "day", "--format", "table").stdout.splitlines()
    assert table[-1].split() == ["total", "1.5"]  # 0.25 + 0.5 + 0.75


def test_without_the_admin_key_one_line_names_the_variable(invoke, fake):
    for command in ("usage", "costs"):
        result = invoke(command)
        assert result.exit_code == 3 and "OPENAI_ADMIN_KEY" in result.stderr
        assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert fake.requests == []


def test_a_refused_admin_key_is_exit_3_and_never_printed(invoke, admin, monkeypatch):
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-wrong-0123456789")
    result = invoke("usage", "--days", "1")
    assert result.exit_code == 3 and "sk-admin-wrong-0123456789" not in result.stderr + result.stdout
    assert "OPENAI_ADMIN_KEY" in result.stderr and len(result.stderr.splitlines()) == 1


def test_days_out_of_range_is_refused_before_sending(invoke, admin):
    result = invoke("usage", "--days", "0")
    assert result.exit_code == 2 and admin.requests == []
