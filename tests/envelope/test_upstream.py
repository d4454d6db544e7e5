"""The envelope's chat-shaped requests as Responses bodies, and the API choice refused before any request."""

import pytest

from oaicli.core.errors import OaicliError
from oaicli.envelope.upstream import choose_api, responses_body


def test_a_chat_body_becomes_a_responses_body_with_the_fields_renamed():
    body = {"model": "gpt-5-mini", "messages": [{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": "Hi"}],
            "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 50, "temperature": 0.2,
            "response_format": {"type": "json_object"}, "previous_response_id": "resp_1"}
    assert responses_body(body) == {
        "model": "gpt-5-mini", "instructions": "Be brief.", "previous_response_id": "resp_1",
        "input": [{"type": "message", "role": "user", "content": "Hi"}], "max_output_tokens": 50,
        "text": {"format": {"type": "json_object"}}, "stream": True, "temperature": 0.2}


def test_a_conversation_rides_along_and_nothing_chat_only_is_sent():
    sent = responses_body({"model": "m", "messages": [{"role": "user", "content": "q"}], "conversation": "conv_1",
                           "max_completion_tokens": 9})
    assert sent["conversation"] == "conv_1" and sent["max_output_tokens"] == 9
    assert not {"messages", "max_completion_tokens", "stream", "stream_options"} & set(sent)


@pytest.mark.parametrize("api, context, model, message", [
    ("chat", "server", "gpt-4o", "--context server needs --api responses"),
    ("auto", "previous", "gpt-4o", "--context previous needs --api responses"),
    ("chat", "local", "text-davinci-003", "completions-only"),
    ("completions", "local", "gpt-4o", "completions-only"),
])
def test_choices_that_cannot_work_are_usage_errors(api, context, model, message):
    with pytest.raises(OaicliError) as raised:
        choose_api(api, context, model, "http://127.0.0.1:1/v1")
    assert raised.value.exit_code == 2 and message in raised.value.message


def test_auto_is_the_responses_api_at_openai():
    assert choose_api("auto", "local", "gpt-4o", "https://api.openai.com/v1") == "responses"
    assert choose_api(None, "local", "gpt-4o", "https://api.openai.com/v1") == "chat"
