"""moderate against Prism (both specs): the request must validate; the exit code follows `flagged`."""

import json


def test_moderate_one_input_validates(prism):
    result = prism.run("moderate", "some text", "-m", "text-moderation-latest")
    assert "HTTP 422" not in result.stderr, result.stderr
    assert result.returncode in (0, 9), result.stderr
    answer = json.loads(result.stdout)
    assert result.returncode == (9 if any(r["flagged"] for r in answer["results"]) else 0)


def test_moderate_several_inputs_from_args_validate(prism):
    result = prism.run("moderate", "one", "two")
    assert "HTTP 422" not in result.stderr, result.stderr
    assert "results" in json.loads(result.stdout)


def test_moderate_stdin_validates(prism):
    result = prism.run("moderate", input="from stdin")
    assert "HTTP 422" not in result.stderr, result.stderr
    assert result.returncode in (0, 9)
