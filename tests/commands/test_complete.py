"""oaicli complete against the loopback fake."""

import json

import pytest

from tests.commands.test_chat import bodies


def test_streams_the_completion(fake, invoke):
    result = invoke("complete", "Once upon a time")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == " more text\n"
    body = bodies(fake, "/v1/completions")[0]
    assert body == {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time", "stream": True}


def test_every_field_reaches_the_request(fake, invoke):
    result = invoke("complete", "def f(", "-m", "davinci-002", "--suffix", "return x", "--max-tokens", "9",
                    "--temperature", "0", "--top-p", "0.5", "-n", "2", "--logprobs", "3", "--echo", "--stop", "\n\n",
                    "--presence-penalty", "0.1", "--frequency-penalty", "0.2", "--best-of", "3",
                    "--logit-bias", "50256=-100", "--user", "me", "--seed", "1", "--no-stream")
    assert result.exit_code == 0, result.stderr
    assert bodies(fake, "/v1/completions")[0] == {
        "model": "davinci-002", "prompt": "def f(", "suffix": "return x", "max_tokens": 9, "temperature": 0,
        "top_p": 0.5, "n": 2, "logprobs": 3, "echo": True, "stop": ["\n\n"], "presence_penalty": 0.1,
        "frequency_penalty": 0.2, "best_of": 3, "logit_bias": {"50256": -100}, "user": "me", "seed": 1}
    assert result.stdout == "[0] def f( more text\n[1] def f( more text\n"


def test_format_json_assembles_text_and_logprobs_from_the_stream(fake, invoke):
    result = invoke("complete", "hi", "--logprobs", "1", "--format", "json")
    response = json.loads(result.stdout)
    choice = response["choices"][0]
    assert response["object"] == "text_completion"
    assert choice["text"] == " more text" and choice["finish_reason"] == "stop"
    assert choice["logprobs"]["tokens"] == [" ", "more ", "text"]
    assert choice["logprobs"]["text_offset"] == [0, 1, 6]
    assert choice["logprobs"]["token_logprobs"] == [-0.25] * 3
    assert response["usage"]["completion_tokens"] == 2


def test_prompt_from_stdin(fake, invoke):
    invoke("complete", input="piped prompt\n")
    assert bodies(fake, "/v1/completions")[0]["prompt"] == "piped prompt"


@pytest.mark.parametrize("args, message", [
    (["--logprobs", "6"], "0<=x<=5"),
    (["--best-of", "1", "-n", "2"], "must be at least -n"),
    (["--temperature", "-0.1"], "0<=x<=2"),
])
def test_bad_values_are_refused_before_any_request(fake, invoke, args, message):
    result = invoke("complete", "hi", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert fake.calls("POST") == []


def test_a_suffix_over_the_context_window_is_refused_before_the_request(invoke, fake):
    suffix = "word " * 5000  # 5,000 tokens: over gpt-3.5-turbo-instruct's 4,096
    result = invoke("complete", "def f(", "-m", "gpt-3.5-turbo-instruct", "--suffix", suffix, "--max-tokens", "10")
    assert result.exit_code == 4
    assert result.stderr.startswith("Error: The prompt and --suffix take 5,00")
    assert "over gpt-3.5-turbo-instruct's context window of 4,096 tokens" in result.stderr
    assert fake.calls("POST", "/v1/completions") == []
    fits = invoke("complete", "def f(", "-m", "gpt-3.5-turbo-instruct", "--suffix", "word " * 3000, "--max-tokens", "10")
    assert fits.exit_code == 0 and len(fake.calls("POST", "/v1/completions")) == 1
