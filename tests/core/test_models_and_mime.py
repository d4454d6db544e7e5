"""One model-name parser for every table (token windows, encodings, fine-tune limits, completions-only), one MIME table."""

from oaicli.conversation.tokens import context_window
from oaicli.conversation.turn import completions_only
from oaicli.core.models import DEFAULT_MODELS, base_model, lookup, model_path
from oaicli.jobs.training_data import TOKEN_LIMITS


def test_base_model_strips_fine_tune_wrappers_and_provider_prefixes():
    assert base_model("ft:gpt-4o-mini-2024-07-18:acme::abc123") == "gpt-4o-mini-2024-07-18"
    assert base_model("davinci:ft-acme-2023-01-01") == "davinci"
    assert base_model("openai/GPT-4o") == "gpt-4o"


def test_lookup_takes_the_longest_family_that_names_the_model():
    table = {"gpt-4": 1, "gpt-4o": 2, "gpt-4o-mini": 3}
    assert lookup(table, "ft:gpt-4o-mini-2024-07-18:acme::x") == 3
    assert lookup(table, "gpt-4o-2024-08-06") == 2
    assert lookup(table, "gpt-40") is None


def test_every_table_reads_model_names_the_same_way():
    fine_tuned = "ft:gpt-3.5-turbo-0125:acme::abc"
    assert context_window(fine_tuned) == context_window("gpt-3.5-turbo")
    assert lookup(TOKEN_LIMITS, fine_tuned) == TOKEN_LIMITS["gpt-3.5-turbo"]
    assert completions_only("ft:gpt-3.5-turbo-instruct:acme::x") and not completions_only(fine_tuned)


def test_defaults_and_model_urls():
    assert DEFAULT_MODELS["chat"] == "gpt-3.5-turbo"
    assert model_path("ft:gpt-4o:acme::a/b") == "/models/ft:gpt-4o:acme::a%2Fb"


def test_one_mime_table_for_every_upload():
    from oaicli.core.mime import mime_type
    assert mime_type("train.jsonl") == "text/jsonl"
    assert mime_type("photo.JPG") == "image/jpeg" and mime_type("mask.png") == "image/png"
    assert mime_type("talk.m4a") == "audio/mp4" and mime_type("talk.wav") == "audio/wav"
    assert mime_type("notes.unknown-ext") == "application/octet-stream"
