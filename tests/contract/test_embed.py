"""embed against Prism (both specs): every request shape we send must validate."""

import json

from tests.contract.conftest import assert_valid


def test_embed_one_text_validates(prism):
    result = prism.run("embed", "a red fox", "--format", "jsonl")
    assert_valid(result)
    line = json.loads(result.stdout.splitlines()[0])
    assert line["index"] == 0 and line["input"] == "a red fox" and isinstance(line["embedding"], list)


def test_embed_with_model_and_base64_validates(prism):
    result = prism.run("embed", "x", "-m", "text-embedding-3-small", "--encoding-format", "base64", "--format", "json")
    assert_valid(result)
    assert json.loads(result.stdout)[0]["input"] == "x"


def test_embed_dimensions_validates(prism_current):
    result = prism_current.run("embed", "x", "-m", "text-embedding-3-small", "--dimensions", "256")
    assert_valid(result)


def test_embed_batch_from_stdin_validates(prism):
    result = prism.run("embed", "--batch-size", "3", input="one\ntwo\nthree\n")
    # Prism answers every batch with its one static example, so the count check may object;
    # what matters here is that the request itself validated.
    assert "HTTP 422" not in result.stderr, result.stderr
    assert result.returncode == 0 or "embeddings for a batch of 3 inputs" in result.stderr
