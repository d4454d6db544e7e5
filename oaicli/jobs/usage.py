"""The organization's usage and costs as report rows: daily buckets (every page) into one row per day and
key (model, project or line item), and their totals (`oaicli usage`, `oaicli costs`)."""

import time
from collections import defaultdict
from datetime import datetime, timezone

from oaicli.api import generic

DAY = 86400
USAGE_PATH = "/organization/usage/completions"
COSTS_PATH = "/organization/costs"
# --group-by -> the API's group_by field and the row's column for it ("day" groups by the bucket alone).
USAGE_KEYS = {"model": ("model", "model"), "project": ("project_id", "project"), "day": (None, None)}
COST_KEYS = {"line-item": ("line_item", "line_item"), "project": ("project_id", "project"), "day": (None, None)}
TOKEN_FIELDS = (("requests", "num_model_requests"), ("input_tokens", "input_tokens"),
                ("output_tokens", "output_tokens"), ("cached_tokens", "input_cached_tokens"))


def window(days: int, now: float | None = None) -> dict:
    """The query for the last `days` days, today included: from midnight UTC, one bucket a day."""
    today = int(now if now is not None else time.time()) // DAY * DAY
    return {"start_time": str(today - (days - 1) * DAY), "bucket_width": "1d", "limit": str(min(days, 31))}


def usage_rows(client, days: int, group_by: str, now: float | None = None) -> list[dict]:
    """Tokens in and out and requests per day and key; with --group-by day or project, the cost in USD too
    (the costs endpoint groups by project, not by model)."""
    field, column = USAGE_KEYS[group_by]
    query = {**window(days, now), **({"group_by": field} if field else {})}
    sums: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys([name for name, _ in TOKEN_FIELDS], 0))
    for bucket in _buckets(client, USAGE_PATH, query):
        for result in bucket.get("results") or []:
            row = sums[(_day(bucket), result.get(field) if field else None)]
            for name, source in TOKEN_FIELDS:
                row[name] += result.get(source) or 0
    costs = cost_sums(client, days, group_by, now) if group_by in ("day", "project") else None
    rows = []
    for (day, key), counts in sorted(sums.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        row = {"day": day, **({column: key or "(none)"} if column else {}), **counts}
        if costs is not None:
            row["cost_usd"] = round(costs.get((day, key), 0.0), 6)
        rows.append(row)
    return rows


def cost_sums(client, days: int, group_by: str, now: float | None = None) -> dict[tuple, float]:
    field, _column = COST_KEYS[group_by]
    query = {**window(days, now), **({"group_by": field} if field else {})}
    sums: dict[tuple, float] = defaultdict(float)
    for bucket in _buckets(client, COSTS_PATH, query):
        for result in bucket.get("results") or []:
            sums[(_day(bucket), result.get(field) if field else None)] += _usd(result)
    return sums


def cost_rows(client, days: int, group_by: str, now: float | None = None) -> list[dict]:
    """Cost in USD per day and key (line item, project, or the day alone)."""
    _field, column = COST_KEYS[group_by]
    rows = []
    for (day, key), value in sorted(cost_sums(client, days, group_by, now).items(),
                                    key=lambda item: (item[0][0], str(item[0][1]))):
        rows.append({"day": day, **({column: key or "(none)"} if column else {}), "cost_usd": round(value, 6)})
    return rows


def total_row(rows: list[dict], label_column: str) -> dict:
    """The sum of every numeric column, labelled `total` in the first column."""
    total = {label_column: "total"}
    for row in rows:
        for name, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[name] = round(total.get(name, 0) + value, 6)
    return total


def _buckets(client, path: str, query: dict):
    for page in generic.pages(client, path, query, "page"):
        yield from page.get("data") or []


def _day(bucket: dict) -> str:
    return datetime.fromtimestamp(bucket.get("start_time") or 0, timezone.utc).strftime("%Y-%m-%d")


def _usd(result: dict) -> float:
    amount = result.get("amount") or {}
    return float(amount.get("value") or 0.0)
