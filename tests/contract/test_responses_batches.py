"""chat --api responses, responses follow/cancel, server-side context, batches submit/results and the batch
modes of chat and embed against Prism's current spec: every request shape sent must validate (no 422)."""

import json

from tests.contract.conftest import assert_valid

RESPONSES = ["--api", "responses"]


def test_responses_chat_with_every_field_validates(prism_current):
    for stream in ("--stream", "--no-stream"):
        result = prism_current.run("chat", *RESPONSES, "Hello", "-s", "Be brief", "-g", "user", "Hi", "-g",
                                   "assistant", "Hello!", "--max-output-tokens", "50", "--reasoning-effort", "low",
                                   "--reasoning-summary", "auto", "--service-tier", "flex", "--store",
                                   "--temperature", "0.5", "--top-p", "0.9", "--user", "u-1", stream)
        assert_valid(result)
        assert json.loads(result.stdout)["object"] == "response"


def test_responses_chat_with_a_json_schema_or_json_object_validates(prism_current, tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                                  "additionalProperties": False}))
    # Prism's example answer is not JSON of that shape: exit 5 after a valid request is what is expected.
    result = prism_current.run("chat", *RESPONSES, "Hi", "--schema", str(schema), "--no-stream")
    assert "HTTP 422" not in result.stderr and result.returncode in (0, 5), result.stderr
    assert_valid(prism_current.run("chat", *RESPONSES, "Hi", "--response-format", "json_object", "--no-stream"))


def test_background_response_and_follow_and_cancel_validate(prism_current):
    started = prism_current.run("chat", *RESPONSES, "--background", "Hi")
    assert_valid(started)
    response_id = json.loads(started.stdout)["id"]
    followed = prism_current.run("responses", "follow", response_id, "--timeout", "5")
    assert "HTTP 422" not in followed.stderr and followed.returncode in (0, 6, 7, 8), followed.stderr
    cancelled = prism_current.run("responses", "cancel", response_id)
    assert "HTTP 422" not in cancelled.stderr and cancelled.returncode == 0, cancelled.stderr


def test_server_side_context_requests_validate(prism_current, tmp_path):
    env = {"OAICLI_HOME": str(tmp_path)}
    assert_valid(prism_current.run("chat", "--session", "local", "first", "--no-stream", env=env))
    for mode in ("previous", "server"):
        for question in ("one", "two"):
            assert_valid(prism_current.run("chat", *RESPONSES, "--session", "local" if mode == "server" else mode,
                                           "--context", mode, question, env=env))


def test_envelope_requests_through_responses_validate(prism_current, tmp_path):
    # The envelope's chat-shaped request becomes a Responses body (max_tokens -> max_output_tokens, ...);
    # an invalid one would answer 2001 (the API rejected the request) instead of 0.
    env = {"OAICLI_HOME": str(tmp_path)}
    lines = "".join(json.dumps({"version": "1.0.0", "pars": {"user_id": "u", "group_id": "g", "question": q}}) + "\n"
                    for q in ("one", "two"))
    for mode in ("local", "previous", "server"):
        for stream in ("--stream", "--no-stream"):
            result = prism_current.run("chat", "--envelope", *RESPONSES, "--context", mode, "-s", "Be brief",
                                       "--max-tokens", "50", "--temperature", "0.5", stream, input=lines, env=env)
            assert result.returncode == 0, result.stderr
            finals = [json.loads(line) for line in result.stdout.splitlines() if '"msg":"delta"' not in line]
            assert [answer["code"] for answer in finals] == [0, 0], result.stdout


def test_batch_submit_and_results_validate(prism_current, tmp_path):
    requests = tmp_path / "requests.jsonl"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    requests.write_text(json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                                    "body": body}) + "\n")
    submitted = prism_current.run("batches", "submit", str(requests))
    assert_valid(submitted)
    batch_id = json.loads(submitted.stdout)["id"]
    results = prism_current.run("batches", "results", batch_id)
    assert "HTTP 422" not in results.stderr, results.stderr


def test_chat_and_embed_batch_modes_validate(prism_current, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('"one"\n"two"\n')
    assert_valid(prism_current.run("chat", "--batch", str(prompts), "-s", "Be brief"))
    docs = tmp_path / "docs.txt"
    docs.write_text("alpha\nbeta\n")
    assert_valid(prism_current.run("embed", "--batch", "-i", str(docs), "--dimensions", "256"))
