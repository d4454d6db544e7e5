"""`chat --batch` and `embed --batch`: the requests the plain command would send, run as one batch (half
price), and the answers written as the plain command writes them (same order, same formats); without
--wait, the batch id to collect later with `oaicli batches results`."""

import json
import tempfile
from pathlib import Path

from oaicli.api.completions import answer_of, request_params
from oaicli.core.errors import ExitCode, InputError, OaicliError
from oaicli.jobs import batch_file, batches
from oaicli.output import writers as output
from oaicli.output.progress import progress_bar


def chat_batch(opts, invocation) -> int:
    """Each line of the prompts file (a JSON prompt string or messages array) is one chat request."""
    model = opts["model"] or invocation.settings.default_model("chat")
    fmt = output.answer_format(invocation)
    with _prompt_lines(opts["batch_file"], invocation) as lines, tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chat-batch.jsonl"
        try:
            written = _write(path, batch_file.chat_requests(lines, model, system=opts["system"],
                                                            options=request_params(opts)))
        except batch_file.InputError as exc:
            raise InputError(f"{opts['batch_file']}: {exc}") from None
        if not written:  # else the check of the built file would name its temporary path
            raise InputError(f"{opts['batch_file']} holds no prompts.",
                             "Write one JSON prompt string or messages array per line.")
        batch = _submit(invocation, path)
    if not opts["wait"]:
        return _started(invocation, batch)
    labelled = (opts.get("n") or 1) > 1

    def show(line: dict) -> None:
        # As `chat --format json` prints its answer: one JSON document per prompt, not one array of them.
        if fmt == "json":
            output.write(output.dumps(line.get("response")), stream=invocation.stdout)
        elif fmt == "jsonl":
            output.write_json_line(line.get("response"), invocation.stdout)
        else:
            output.write(_as_chat_prints(line["response"], labelled), newline=False, stream=invocation.stdout)

    failed = _collect(invocation, batch, show)
    return _failed_exit(failed, batch)


def _as_chat_prints(response: dict, labelled: bool) -> str:
    """One answer as `chat` prints it: each choice as sent (labelled `[i] ` when n > 1, each starting on a
    line of its own), ending on a line of its own."""
    parts = []
    for choice in sorted(response.get("choices") or (), key=lambda c: c.get("index", 0)):
        index = choice.get("index", 0)
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")
        parts.append((f"[{index}] " if labelled else "") + answer_of(response, index))
    text = "".join(parts)
    return text if not parts or text.endswith("\n") else text + "\n"


def embed_batch(invocation, body: dict, source, writer, wait: bool, decode, target=None) -> int:
    """The embedding requests `embed` would send (grouped as it groups them), as one batch; with `wait`,
    every group's vectors (read with `decode`, media/embeddings' read_vectors) go to `writer` in input
    order. The texts are kept for the writer (a batch holds at most 50,000 inputs). `target` names the
    file the writer fills: it is written whole or not at all, since a missing row would shift every
    vector after it."""
    groups = list(source)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "embed-batch.jsonl"
        try:
            _write(path, batch_file.embedding_requests((group.texts for group in groups), body["model"],
                                                       options={k: v for k, v in body.items() if k != "model"}))
        except batch_file.InputError as exc:
            raise InputError(f"Too many inputs for one batch: {exc}") from None
        batch = _submit(invocation, path)
    if not wait:
        return _started(invocation, batch)
    by_index = {}

    def keep(line: dict) -> None:
        by_index[batch_file.index_of(line["custom_id"])] = line["response"]

    failed = _collect(invocation, batch, keep)
    count = 0
    for number, group in enumerate(groups):
        if number in by_index:
            data = sorted(by_index[number].get("data", []), key=lambda item: item.get("index", 0))
            writer.write(group.start, group.texts, decode([item["embedding"] for item in data]))
            count += len(group.texts)
    if failed and target is not None:
        raise OaicliError(f"{failed} request(s) of the batch failed, so {target} was not written; "
                          f"`oaicli batches results {batch['id']}` has every result.", exit_code=ExitCode.JOB_FAILED)
    writer.close()
    _failed_exit(failed, batch)
    return count


def _prompt_lines(name: str, invocation):
    import contextlib
    if name == "-":
        return contextlib.nullcontext(invocation.stdin.buffer)
    try:
        return open(name, "rb")
    except OSError as exc:
        raise InputError(f"Cannot read {name}: {exc.strerror or exc}.") from exc


def _write(path: Path, lines) -> int:
    """Write the request lines; how many there were."""
    count = 0
    with open(path, "wb") as sink:
        for line in lines:
            sink.write(line)
            count += 1
    return count


def _submit(invocation, path: Path) -> dict:
    batch = batches.submit(invocation.client(), path, None, progress_bar, invocation.notice, invocation.say)
    invocation.notice(f"Created batch {batch['id']}.")
    return batch


def _started(invocation, batch: dict) -> int:
    output.write(batch["id"], stream=invocation.stdout)
    invocation.notice(f"Collect the answers later with `oaicli batches results {batch['id']}` "
                      f"(or follow it with `oaicli batches follow {batch['id']}`).")
    return 0


def _collect(invocation, batch: dict, each) -> int:
    """Follow the batch to its end, then hand each succeeded result to `each` in input order; the
    number of failed requests (each said on stderr)."""
    api = invocation.client()
    on_change = (lambda b: None) if invocation.quiet else (lambda b: invocation.say(batches.status_line(b)))
    try:
        final = batches.follow(api, batch["id"], on_change, _deadline(invocation), sleep=api.sleep)
    except KeyboardInterrupt:
        batches.interrupted(batch["id"], invocation.say)
    batches.outcome(final)
    failed = 0
    with tempfile.TemporaryFile() as merged:
        batches.results(api, batch["id"], merged)
        merged.seek(0)
        for raw in merged:
            line = json.loads(raw)
            if line.get("status") == "completed":
                each(line)
            else:
                failed += 1
                message = (line.get("error") or {}).get("message") or line.get("status")
                invocation.say(f"Request {line.get('custom_id')} failed: {message}")
    return failed


def _deadline(invocation):
    import time
    limit = invocation.settings.flags.get("timeout")
    return None if limit is None else time.monotonic() + float(limit)


def _failed_exit(failed: int, batch: dict) -> int:
    if failed:
        raise OaicliError(f"{failed} request(s) of the batch failed; the others were written. "
                          f"`oaicli batches results {batch['id']}` has every result.", exit_code=ExitCode.JOB_FAILED)
    return 0
