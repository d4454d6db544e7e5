"""chat, complete and edit against Prism: every request must validate against OpenAI's schema (both specs
where the endpoint exists; /v1/edits only in the 2023 one, so the current one exercises the fallback)."""

import json

from tests.contract.conftest import assert_valid

SAMPLING = ["--temperature", "0.7", "--top-p", "0.9", "-n", "1", "--stop", "END", "--max-tokens", "20",
            "--presence-penalty", "0.5", "--frequency-penalty", "-0.5", "--logit-bias", "50256=-100",
            "--user", "user-1", "--seed", "3"]


def test_chat_validates(prism):
    result = prism.run("chat", "Hello", "-s", "Be brief", "-g", "user", "Hi", "-g", "assistant", "Hello!",
                       "--response-format", "json_object", "--no-stream", *SAMPLING)
    assert_valid(result)
    assert json.loads(result.stdout)["choices"]


def test_streamed_chat_validates(prism):
    """Prism does not stream; the whole answer still goes through the stream assembler."""
    result = prism.run("chat", "Hello", *SAMPLING)
    assert_valid(result)
    assert json.loads(result.stdout)["choices"]


def test_streamed_chat_with_usage_validates(prism):
    result = prism.run("chat", "Hello", "--usage")
    assert_valid(result)


def test_chat_session_turns_validate(prism, tmp_path):
    env = {"OAICLI_HOME": str(tmp_path)}
    assert_valid(prism.run("chat", "--session", "c", "first", "--no-stream", env=env))
    assert_valid(prism.run("chat", "--session", "c", "second", "--no-stream", env=env))


def test_max_completion_tokens_validates_on_the_current_spec(prism_current):
    assert_valid(prism_current.run("chat", "Hello", "--max-completion-tokens", "30", "--no-stream"))


def test_envelope_requests_validate(prism, tmp_path):
    line = json.dumps({"version": "1.0.0", "pars": {"user_id": "1", "question": "Hi", "group_id": "", "question_id": ""}})
    result = prism.run("chat", "--envelope", input=line + "\n", env={"OAICLI_HOME": str(tmp_path)})
    assert_valid(result)
    assert json.loads(result.stdout)["code"] == 0, result.stdout


def test_group_shared_envelope_requests_with_speaker_names_validate(prism, tmp_path):
    lines = "".join(json.dumps({"version": "1.0.0", "pars": {"user_id": user, "question": "Hi", "group_id": "g",
                                                            "question_id": ""}}) + "\n" for user in ("ann", "用户"))
    result = prism.run("chat", "--envelope", "--group-shared", input=lines, env={"OAICLI_HOME": str(tmp_path)})
    assert_valid(result)
    assert [json.loads(out)["code"] for out in result.stdout.splitlines()] == [0, 0], result.stdout


def test_complete_validates(prism):
    result = prism.run("complete", "Say this is a test", "--suffix", "!", "--logprobs", "2", "--echo",
                       "--best-of", "2", "--no-stream", *SAMPLING)
    assert_valid(result)
    assert "choices" in json.loads(result.stdout)


def test_streamed_complete_validates(prism):
    assert_valid(prism.run("complete", "Say this is a test"))


def test_completions_model_chat_transcript_validates(prism, tmp_path):
    env = {"OAICLI_HOME": str(tmp_path)}
    assert_valid(prism.run("chat", "--session", "t", "-m", "text-davinci-003", "hi", "--no-stream", env=env))
    assert_valid(prism.run("chat", "--session", "t", "again", "--no-stream", env=env))


def test_edit_validates_on_the_2023_spec(prism_2023):
    result = prism_2023.run("edit", "--instruction", "Fix the spelling", "--input", "What day of the wek is it?",
                            "-n", "1", "--temperature", "0.5", "--top-p", "1")
    assert_valid(result)
    assert json.loads(result.stdout)["object"] == "edit"
    assert "chat completion" not in result.stderr


def test_edit_falls_back_to_chat_on_the_current_spec(prism_current):
    result = prism_current.run("edit", "--instruction", "Fix the spelling", "--input", "What day of the wek is it?")
    assert_valid(result)
    assert "no /v1/edits (404)" in result.stderr
    assert json.loads(result.stdout)["object"] == "edit"


def test_edit_without_fallback_reports_the_404_on_the_current_spec(prism_current):
    result = prism_current.run("edit", "--instruction", "x", "--input", "y", "--no-fallback")
    assert result.returncode == 4 and "HTTP 404" in result.stderr
