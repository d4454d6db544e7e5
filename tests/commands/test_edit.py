"""oaicli edit against the loopback fake, including the chat fallback where /v1/edits is gone."""

import json

import pytest

from tests.commands.test_chat import bodies


def test_edit_posts_to_edits(fake, invoke):
    result = invoke("edit", "--instruction", "Fix the spelling", "--input", "helo", "-n", "1", "--temperature", "0")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "helo [edited: Fix the spelling]\n"
    assert bodies(fake, "/v1/edits")[0] == {"model": "text-davinci-edit-001", "instruction": "Fix the spelling",
                                           "input": "helo", "n": 1, "temperature": 0}
    assert result.stderr == ""


def test_input_from_a_file_or_stdin(fake, invoke, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("from file")
    invoke("edit", "--instruction", "x", "--input-file", str(path))
    invoke("edit", "--instruction", "x", input="from stdin")
    assert [b["input"] for b in bodies(fake, "/v1/edits")] == ["from file", "from stdin"]
    assert invoke("edit", "--instruction", "x", "--input", "a", "--input-file", str(path)).exit_code == 2


def test_falls_back_to_chat_on_404_and_says_so(fake, invoke):
    fake.state["no_edits"] = True
    fake.state["answer"] = lambda messages: "hello"
    result = invoke("edit", "--instruction", "Fix the spelling", "--input", "helo", "--format", "json", "-n", "2")
    assert result.exit_code == 0, result.stderr
    assert "no /v1/edits (404)" in result.stderr and "gpt-3.5-turbo" in result.stderr
    response = json.loads(result.stdout)
    assert response["object"] == "edit"
    assert response["choices"] == [{"text": "hello", "index": 0}, {"text": "hello", "index": 1}]
    chat = bodies(fake)[0]
    assert chat["model"] == "gpt-3.5-turbo" and chat["n"] == 2
    assert "Fix the spelling" in chat["messages"][-1]["content"] and "helo" in chat["messages"][-1]["content"]


def test_fallback_text_output_has_the_same_shape(fake, invoke):
    fake.state["no_edits"] = True
    result = invoke("edit", "--instruction", "upper", "--input", "abc", "--fallback-model", "gpt-4o")
    assert result.stdout.startswith("echo: Instruction: upper")
    assert bodies(fake)[0]["model"] == "gpt-4o"


def test_no_fallback_fails_with_the_404(fake, invoke):
    fake.state["no_edits"] = True
    result = invoke("edit", "--instruction", "x", "--input", "y", "--no-fallback")
    assert result.exit_code == 4
    assert "Invalid URL" in result.stderr and "HTTP 404" in result.stderr
    assert "without --no-fallback" in result.stderr and "models list" not in result.stderr
    assert fake.calls("POST", "/v1/chat/completions") == []


def test_an_unknown_edit_model_is_reported_not_worked_around(fake, invoke):
    from tests.fake.server import Scripted
    fake.queue("POST", "/v1/edits", Scripted(404, {"error": {"message": "The model `typo` does not exist",
                                                             "type": "invalid_request_error",
                                                             "code": "model_not_found"}}))
    result = invoke("edit", "--instruction", "x", "--input", "y", "-m", "typo")
    assert result.exit_code == 4 and "does not exist" in result.stderr
    assert fake.calls("POST", "/v1/chat/completions") == []


@pytest.mark.parametrize("args, stdin, source", [
    ([], "", "stdin"), ([], " \n", "stdin"), (["--input-file", "-"], "", "stdin"), (["--input", ""], None, "--input")])
def test_an_empty_text_to_edit_is_refused_before_the_request(fake, invoke, args, stdin, source):
    result = invoke("edit", "--instruction", "Fix it", *args, input=stdin)
    assert result.exit_code == 4 and result.stdout == ""
    assert result.stderr.startswith(f"Error: The text to edit is empty ({source} gave nothing).")
    assert fake.requests == []


def test_an_empty_file_to_edit_is_refused_too(fake, invoke, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = invoke("edit", "--instruction", "Fix it", "--input-file", empty)
    assert result.exit_code == 4 and f"({empty} gave nothing)" in result.stderr and fake.requests == []
