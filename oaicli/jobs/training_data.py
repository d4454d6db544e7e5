"""Local checks of JSONL fine-tuning data (chat messages or prompt/completion), line by line, in one pass."""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from oaicli.conversation.tokens import counter_for
from oaicli.core.errors import InputError
from oaicli.core.models import lookup
from oaicli.output.files import atomic_writer

CHAT_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
CHAT_KEYS = {"messages", "tools", "functions", "parallel_tool_calls"}
MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "function_call", "tool_call_id", "refusal"}
LEGACY_KEYS = {"prompt", "completion"}
# Training price in USD per million tokens, and the longest example each model trains on (published figures).
TRAINING_PRICES = {"gpt-4.1-nano": 1.5, "gpt-4.1-mini": 5.0, "gpt-4.1": 25.0, "gpt-4o-mini": 3.0, "gpt-4o": 25.0,
                   "gpt-3.5-turbo": 8.0, "davinci-002": 6.0, "babbage-002": 0.4,
                   "davinci": 30.0, "curie": 3.0, "babbage": 0.6, "ada": 0.4}
TOKEN_LIMITS = {"gpt-4.1": 65536, "gpt-4o": 65536, "gpt-3.5-turbo": 16385, "davinci-002": 16384,
                "babbage-002": 16384, "davinci": 2048, "curie": 2048, "babbage": 2048, "ada": 2048}
DEFAULT_TOKEN_LIMIT = 65536
UNKNOWN_KEY = ": a key the API does not know"


@dataclass
class Problem:
    line: int
    message: str


@dataclass
class Report:
    path: Path
    model: str
    format: str | None = None
    lines: int = 0
    examples: int = 0
    total_tokens: int = 0
    problems: list[Problem] = field(default_factory=list)
    valid: int = 0
    # Line numbers of examples with problems (usually few); --fix writes every other example.
    bad_lines: set[int] = field(default_factory=set)
    # Examples whose only fault is keys the API does not know: line -> the example without them.
    repairs: dict[int, str] = field(default_factory=dict)

    @property
    def token_limit(self) -> int:
        return lookup(TOKEN_LIMITS, self.model) or DEFAULT_TOKEN_LIMIT

    @property
    def cost_per_epoch(self) -> float | None:
        price = lookup(TRAINING_PRICES, self.model)
        return None if price is None else round(self.total_tokens * price / 1_000_000, 4)

    def as_dict(self) -> dict:
        return {"file": str(self.path), "model": self.model, "format": self.format, "lines": self.lines,
                "examples": self.examples, "valid_examples": self.valid,
                "repairable_examples": len(self.repairs),
                "total_tokens": self.total_tokens, "token_limit": self.token_limit,
                "estimated_cost_per_epoch_usd": self.cost_per_epoch,
                "problems": [{"line": p.line, "message": p.message} for p in self.problems]}


def token_counter(model: str):
    """oaicli.conversation.tokens' counter for the model (exact for OpenAI models, an estimate otherwise)."""
    return counter_for(model)


def analyse(path: Path, model: str) -> Report:
    """Check every line; memory holds one line at a time plus an 8-byte digest per example for duplicates."""
    report = Report(Path(path), model)
    count = token_counter(model)
    seen: dict[int, int] = {}
    with open(path, "rb") as source:
        for number, raw in enumerate(source, start=1):
            report.lines = number
            if not raw.strip():
                continue
            report.examples += 1
            problems = _check_line(raw, report, count, seen, number)
            report.problems.extend(Problem(number, message) for message in problems)
            if not problems:
                report.valid += 1
            elif number not in report.repairs:
                report.bad_lines.add(number)
    if report.examples == 0:
        report.problems.append(Problem(0, "the file holds no examples"))
    return report


def _check_line(raw: bytes, report: Report, count, seen: dict, number: int) -> list[str]:
    try:
        example = json.loads(raw)
    except UnicodeDecodeError:  # a ValueError without the position fields of JSONDecodeError
        return ["not valid UTF-8 text"]
    except ValueError as exc:
        return [f"not valid JSON ({exc.msg} at column {exc.colno})"]
    if not isinstance(example, dict):
        return [f"expected a JSON object, got {type(example).__name__}"]
    kind = "chat" if "messages" in example else "prompt-completion" if LEGACY_KEYS & set(example) else None
    if kind is None:
        return ['neither "messages" (chat) nor "prompt"/"completion" keys']
    report.format = report.format or kind
    if kind != report.format:
        return [f"a {kind} example in a {report.format} file (the first example decides the format)"]
    problems = _check_chat(example) if kind == "chat" else _check_legacy(example)
    if problems and all(p.endswith(UNKNOWN_KEY) for p in problems):
        return _repair(example, kind, problems, report, count, seen, number)
    if problems:
        return problems
    return _check_unique_and_size(example, kind, report, count, seen, number)


def _repair(example: dict, kind: str, problems: list[str], report: Report, count, seen, number: int) -> list[str]:
    """Drop the unknown keys; if nothing else is wrong, --fix writes the example without them."""
    cleaned = _without_unknown_keys(example, kind)
    rest = _check_unique_and_size(cleaned, kind, report, count, seen, number)
    if not rest:
        report.repairs[number] = json.dumps(cleaned, ensure_ascii=False)
    return [f"{p} (--fix removes it)" for p in problems] + rest


def _without_unknown_keys(example: dict, kind: str) -> dict:
    if kind == "prompt-completion":
        return {k: v for k, v in example.items() if k in LEGACY_KEYS}
    cleaned = {k: v for k, v in example.items() if k in CHAT_KEYS}
    cleaned["messages"] = [{k: v for k, v in m.items() if k in MESSAGE_KEYS} for m in example["messages"]]
    return cleaned


def _check_unique_and_size(example: dict, kind: str, report: Report, count, seen: dict, number: int) -> list[str]:
    digest = int.from_bytes(hashlib.blake2b(json.dumps(example, sort_keys=True).encode(), digest_size=8).digest(),
                            "big")
    if digest in seen:
        return [f"duplicate of line {seen[digest]}"]
    seen[digest] = number
    tokens = _tokens(example, kind, count)
    if tokens > report.token_limit:
        return [f"{tokens} tokens, over the {report.token_limit}-token limit of {report.model} (it would be cut)"]
    report.total_tokens += tokens
    return []


def _check_chat(example: dict) -> list[str]:
    problems = [f'"{key}"{UNKNOWN_KEY}' for key in example if key not in CHAT_KEYS]
    messages = example["messages"]
    if not isinstance(messages, list) or not messages:
        return problems + ['"messages" must be a non-empty list']
    for index, message in enumerate(messages, start=1):
        problems += [f"message {index}: {text}" for text in _check_message(message)]
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        problems.append("no assistant message to learn from")
    return problems


def _check_message(message) -> list[str]:
    if not isinstance(message, dict):
        return ["must be an object"]
    problems = [f'"{key}"{UNKNOWN_KEY}' for key in message if key not in MESSAGE_KEYS]
    role, content = message.get("role"), message.get("content")
    if not isinstance(role, str) or role not in CHAT_ROLES:
        problems.append(f"unknown role {role!r} (expected one of {', '.join(sorted(CHAT_ROLES))})")
    calls = message.get("tool_calls") or message.get("function_call")
    if content is None and not (role == "assistant" and calls):
        problems.append('missing "content"')
    elif content is not None and not isinstance(content, (str, list)):
        problems.append(f'"content" must be a string, not {type(content).__name__}')
    elif isinstance(content, list) and not all(_is_part(part) for part in content):
        problems.append('"content" parts must be objects, each "text" a string')
    elif content is not None and not _text_of(content).strip() and not calls:
        problems.append("empty content")
    if "weight" in message and message["weight"] not in (0, 1):
        problems.append('"weight" must be 0 or 1')
    return problems


def _check_legacy(example: dict) -> list[str]:
    problems = [f'"{key}"{UNKNOWN_KEY}' for key in example if key not in LEGACY_KEYS]
    for key in ("prompt", "completion"):
        if key not in example:
            problems.append(f'missing "{key}"')
        elif not isinstance(example[key], str):
            problems.append(f'"{key}" must be a string, not {type(example[key]).__name__}')
    if isinstance(example.get("completion"), str) and not example["completion"].strip():
        problems.append("empty completion")
    return problems


def _is_part(part) -> bool:
    return isinstance(part, dict) and isinstance(part.get("text", ""), str)


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def _tokens(example: dict, kind: str, counter) -> int:
    """Tokens as the API bills them: the cookbook's per-message overhead, plus any tool definitions."""
    if kind == "prompt-completion":
        return counter.count_text(example["prompt"]) + counter.count_text(example["completion"])
    total = counter.count_messages(example["messages"])
    for key in ("tools", "functions"):
        if example.get(key):
            total += counter.count_text(json.dumps(example[key], separators=(",", ":")))
    return total


def fixed_path(path: Path) -> Path:
    """`data.jsonl` -> `data.fixed.jsonl` beside it, numbered rather than ever overwriting a file."""
    path = Path(path)
    candidate = path.with_name(f"{path.stem}.fixed{path.suffix}")
    number = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.fixed-{number}{path.suffix}")
        number += 1
    return candidate


def write_fixed(report: Report) -> Path:
    """Copy the examples that passed, byte for byte, and the repaired ones, to a new file beside the original."""
    destination = fixed_path(report.path)
    with open(report.path, "rb") as source, atomic_writer(destination) as sink:
        for number, raw in enumerate(source, start=1):
            if number in report.repairs:
                sink.write(report.repairs[number].encode() + b"\n")
            elif raw.strip() and number not in report.bad_lines:
                sink.write(raw if raw.endswith(b"\n") else raw + b"\n")
    return destination


def refuse_invalid(path, model: str) -> None:
    """Refuse data the API would reject, before spending the upload on it."""
    report = analyse(path, model)
    if report.problems:
        first = report.problems[0]
        where = f"line {first.line}: " if first.line else ""
        more = f" (and {len(report.problems) - 1} more problems)" if len(report.problems) > 1 else ""
        raise InputError(f"{path} is not valid fine-tune data: {where}{first.message}{more}.",
                         f"See `oaicli fine-tunes prepare-data {path}` (--fix writes a corrected copy), "
                         "or pass --no-validate.")
