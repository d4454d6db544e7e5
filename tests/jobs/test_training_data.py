"""prepare-data: checks of chat and prompt/completion JSONL, line by line, and --fix's corrected copy."""

import json

import pytest

from oaicli.jobs import training_data

CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello!"}]}
LEGACY = {"prompt": "Q: 2+2 ->", "completion": " 4\n"}


def write(tmp_path, *lines, name="train.jsonl"):
    path = tmp_path / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def problems(report):
    return [(p.line, p.message) for p in report.problems]


def test_good_chat_file_counts_tokens_and_cost(tmp_path):
    path = write(tmp_path, CHAT, {"messages": [{"role": "user", "content": "Bye"},
                                               {"role": "assistant", "content": "Goodbye."}]})
    report = training_data.analyse(path, "gpt-4o-mini-2024-07-18")
    assert report.problems == [] and report.format == "chat" and report.examples == 2
    from oaicli.conversation.tokens import counter_for
    counter = counter_for("gpt-4o-mini-2024-07-18")
    expected = sum(counter.count_messages(m["messages"]) for m in (CHAT, json.loads(path.read_text().splitlines()[1])))
    assert report.total_tokens == expected
    assert report.cost_per_epoch == round(expected * 3.0 / 1_000_000, 4)


def test_good_legacy_file(tmp_path):
    report = training_data.analyse(write(tmp_path, LEGACY, {"prompt": "Q: 3+3 ->", "completion": " 6\n"}), "davinci")
    assert report.problems == [] and report.format == "prompt-completion" and report.total_tokens > 0


def test_every_kind_of_problem_is_reported_by_line(tmp_path):
    path = write(tmp_path,
                 CHAT,                                                         # 1 fine
                 "{not json",                                                  # 2
                 "[1, 2]",                                                     # 3
                 {"text": "x"},                                                # 4
                 {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},  # 5
                 {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "y"}]},  # 6
                 {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "y"}]},     # 7
                 {"messages": [{"role": "user", "content": "only a question"}]},                           # 8
                 CHAT,                                                         # 9 duplicate of 1
                 LEGACY,                                                       # 10 other format
                 "",                                                           # 11 blank: ignored
                 {"messages": [{"role": "user", "content": "word " * 70000}, {"role": "assistant", "content": "y"}]},
                 )
    report = training_data.analyse(path, "gpt-4o-mini")
    found = dict(problems(report))
    assert found[2].startswith("not valid JSON")
    assert found[3] == "expected a JSON object, got list"
    assert found[4] == 'neither "messages" (chat) nor "prompt"/"completion" keys'
    assert found[5].startswith("message 1: unknown role 'robot'")
    assert found[6] == "message 1: empty content"
    assert found[7] == 'message 1: "content" must be a string, not int'
    assert found[8] == "no assistant message to learn from"
    assert found[9] == "duplicate of line 1"
    assert found[10].startswith("a prompt-completion example in a chat file")
    assert "over the 65536-token limit" in found[12]
    assert 11 not in found and 1 not in found
    assert report.valid == 1 and report.bad_lines == set(range(2, 11)) | {12}


def test_legacy_problems(tmp_path):
    report = training_data.analyse(write(tmp_path, {"prompt": "x"}, {"prompt": "x", "completion": 3},
                                         {"prompt": "x", "completion": " ", "extra": 1}), "curie")
    assert problems(report) == [(1, 'missing "completion"'), (2, '"completion" must be a string, not int'),
                                (3, '"extra": a key the API does not know'), (3, "empty completion")]


def test_an_empty_file_is_a_problem(tmp_path):
    report = training_data.analyse(write(tmp_path, ""), "gpt-4o-mini")
    assert problems(report) == [(0, "the file holds no examples")]


def test_fix_writes_the_valid_examples_beside_and_never_overwrites(tmp_path):
    path = write(tmp_path, CHAT, "{bad", CHAT, LEGACY)
    original = path.read_bytes()
    report = training_data.analyse(path, "gpt-4o-mini")
    first = training_data.write_fixed(report)
    second = training_data.write_fixed(report)
    assert first == tmp_path / "train.fixed.jsonl" and second == tmp_path / "train.fixed-2.jsonl"
    assert first.read_text() == json.dumps(CHAT) + "\n" == second.read_text()
    assert path.read_bytes() == original


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_prepare_data_command_reports_and_exits_4_on_problems(invoke, tmp_path, fmt):
    path = write(tmp_path, CHAT, "{bad")
    result = invoke("fine-tunes", "prepare-data", path, "--format", fmt)
    assert result.exit_code == 4 and "1 problem(s) found" in result.stderr
    if fmt == "json":
        summary = json.loads(result.stdout)
        assert summary["problems"][0]["line"] == 2 and summary["valid_examples"] == 1 and summary["fixed_file"] is None
    else:
        assert result.stdout.startswith("line 2: not valid JSON") and "Estimated cost per epoch: $" in result.stdout
    assert not (tmp_path / "train.fixed.jsonl").exists()


def test_prepare_data_fix_exits_0_with_the_corrected_copy(invoke, tmp_path):
    path = write(tmp_path, CHAT, "{bad")
    result = invoke("fine-tunes", "prepare-data", path, "--fix", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["fixed_file"] == str(tmp_path / "train.fixed.jsonl")
    assert (tmp_path / "train.fixed.jsonl").read_text() == json.dumps(CHAT) + "\n"


def test_prepare_data_on_a_good_file_exits_0(invoke, tmp_path):
    result = invoke("fine-tunes", "prepare-data", write(tmp_path, CHAT), "--format", "table")
    assert result.exit_code == 0 and "1 valid, 0 repairable by --fix, 0 problem(s)" in result.stdout
    assert result.stderr == ""


def test_fix_removes_keys_the_api_does_not_know(tmp_path):
    noisy = {"id": 7, "messages": [{"role": "user", "content": "Hi", "ts": 1}, {"role": "assistant", "content": "Yo"}]}
    path = write(tmp_path, noisy, "{bad")
    report = training_data.analyse(path, "gpt-4o-mini")
    assert problems(report) == [(1, '"id": a key the API does not know (--fix removes it)'),
                                (1, 'message 1: "ts": a key the API does not know (--fix removes it)'),
                                (2, "not valid JSON (Expecting property name enclosed in double quotes at column 2)")]
    assert report.valid == 0 and report.total_tokens > 0
    fixed = training_data.write_fixed(report)
    assert json.loads(fixed.read_text()) == {"messages": [{"role": "user", "content": "Hi"},
                                                          {"role": "assistant", "content": "Yo"}]}


def test_odd_values_are_reported_by_line_not_crashed_on(tmp_path):
    path = tmp_path / "odd.jsonl"
    reply = {"role": "assistant", "content": "ok"}
    path.write_bytes(b"\n".join([
        json.dumps(CHAT).encode(),
        b'{"prompt": "\xff\xfe"}',
        json.dumps({"messages": [{"role": ["user"], "content": "hi"}, reply]}).encode(),
        json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}, reply]}).encode(),
        json.dumps({"messages": [{"role": "user", "content": ["hi"]}, reply]}).encode(),
    ]) + b"\n")
    found = dict(problems(training_data.analyse(path, "gpt-4o-mini-2024-07-18")))
    assert found[2] == "not valid UTF-8 text"
    assert found[3].startswith("message 1: unknown role ['user']")
    assert found[4] == found[5] == 'message 1: "content" parts must be objects, each "text" a string'
    assert 1 not in found
