"""Token counting: the shipped encodings, offline loading, the chat overhead, the estimate and the window table."""

import gzip
import hashlib
import inspect
import re
import subprocess
import sys

import pytest

from oaicli.conversation import tokens
from tests.conftest import REPO


def published_hash(name: str) -> str:
    """The sha256 tiktoken itself expects for an encoding file (from its own source, not from us)."""
    from tiktoken_ext import openai_public
    source = inspect.getsource(openai_public)
    match = re.search(rf'/{name}\.tiktoken",\s*expected_hash="([0-9a-f]{{64}})"', source)
    return match.group(1)


@pytest.mark.parametrize("name", tokens.SHIPPED)
def test_shipped_files_match_openais_published_hashes(name):
    contents = gzip.decompress((tokens.DATA_DIR / f"{name}.tiktoken.gz").read_bytes())
    assert hashlib.sha256(contents).hexdigest() == published_hash(name)


@pytest.mark.parametrize("name, text, ids", [
    ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),  # OpenAI cookbook
    ("cl100k_base", "hello world", [15339, 1917]),
    ("o200k_base", "hello world", [24912, 2375]),
    ("p50k_base", "hello world", [31373, 995]),
])
def test_encodings_give_known_token_ids(name, text, ids):
    assert tokens.get_encoding(name).encode(text) == ids


@pytest.mark.parametrize("model, expected", [
    ("gpt-3.5-turbo", 2), ("gpt-4", 2), ("gpt-4o", 2), ("text-davinci-003", 2)])
def test_hello_world_is_two_tokens(model, expected):
    counter = tokens.counter_for(model)
    assert counter.exact
    assert counter.count_text("hello world") == expected


def test_encodings_load_without_network(monkeypatch):
    """Building an encoding never goes through tiktoken's downloader or its cache."""
    import tiktoken.load

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download an encoding")

    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)
    monkeypatch.setattr(tokens, "_encodings", {})
    assert tokens.get_encoding("p50k_base").encode("hello world") == [31373, 995]


def test_an_altered_encoding_file_is_refused(tmp_path, monkeypatch):
    original = gzip.decompress((tokens.DATA_DIR / "p50k_base.tiktoken.gz").read_bytes())
    (tmp_path / "p50k_base.tiktoken.gz").write_bytes(gzip.compress(original.replace(b" 995\n", b" 996\n")))
    monkeypatch.setattr(tokens, "DATA_DIR", tmp_path)
    monkeypatch.setattr(tokens, "_encodings", {})
    with pytest.raises(tokens.EncodingFileError, match="published sha256"):
        tokens.get_encoding("p50k_base")


def test_encodings_are_built_once_per_process():
    assert tokens.get_encoding("cl100k_base") is tokens.get_encoding("cl100k_base")


def test_tiktoken_is_imported_only_when_counting():
    code = ("import sys, oaicli.conversation.tokens as t; before = 'tiktoken' in sys.modules; "
            "t.counter_for('gpt-4').count_text('x'); print(before, 'tiktoken' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "True"]


def cookbook_count(messages, encoding, per_message=3, per_name=1):
    """OpenAI's documented num_tokens_from_messages, written out independently of oaicli."""
    total = 0
    for message in messages:
        total += per_message
        for key, value in message.items():
            total += len(encoding.encode(value))
            if key == "name":
                total += per_name
    return total + 3


MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "user", "content": "昨天下雨了,我出门没带伞,会怎么样"},
    {"role": "assistant", "content": "如果您在雨中走了一段较长的路程,您可能会感到湿透和寒冷"},
    {"role": "user", "content": "如果带了呢"},
]


@pytest.mark.parametrize("model, encoding, per_message, per_name", [
    ("gpt-3.5-turbo-0613", "cl100k_base", 3, 1),
    ("gpt-4", "cl100k_base", 3, 1),
    ("gpt-4o-mini-2024-07-18", "o200k_base", 3, 1),
    ("gpt-3.5-turbo-0301", "cl100k_base", 4, -1),
])
def test_messages_count_with_the_documented_overhead(model, encoding, per_message, per_name):
    counter = tokens.counter_for(model)
    expected = cookbook_count(MESSAGES, tokens.get_encoding(encoding), per_message, per_name)
    assert counter.encoding_name == encoding
    assert counter.count_messages(MESSAGES) == expected
    assert counter.count_messages(MESSAGES) == sum(counter.count_message(m) for m in MESSAGES) + 3


def test_message_tokens_from_a_cached_count_equals_counting_the_message():
    counter = tokens.counter_for("gpt-4")
    message = {"role": "assistant", "content": "如果您在雨中走了一段较长的路程"}
    cached = counter.count_text(message["content"])
    assert counter.message_tokens("assistant", cached) == counter.count_message(message)


def test_content_parts_count_their_text():
    counter = tokens.counter_for("gpt-4o")
    parts = [{"type": "text", "text": "hello "}, {"type": "text", "text": "world"}]
    assert counter.count_content(parts) == counter.count_text("hello ") + counter.count_text("world")
    with_image = parts + [{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]
    assert counter.count_content(with_image) == counter.count_content(parts) + tokens.IMAGE_PART_TOKENS


SAMPLES = ["昨天下雨了,我出门没带伞,会怎么样", "鬱龘靐齉爩", "如果您在雨中走了一段较长的路程,您可能会感到湿透和寒冷",
           "東京は雨です。傘を持っていますか?", "비가 오면 우산을 가져가세요", "Лев Толстой написал роман",
           "héllo wörld ça va", "🙂🙃😀 emoji", "def f(x):\n    return x**2 + 12345678",
           "The quick brown fox jumps over the lazy dog."]


@pytest.mark.parametrize("text", SAMPLES)
def test_the_estimate_never_undercounts_the_exact_encodings(text):
    estimate = tokens.counter_for("llama-3-8b-instruct")
    assert not estimate.exact and estimate.encoding_name is None
    exact = [tokens.get_encoding(name).encode(text) for name in tokens.SHIPPED]
    assert estimate.count_text(text) >= max(len(ids) for ids in exact)


def test_the_estimate_is_documented_arithmetic():
    assert tokens.estimate_tokens("abcde") == 2  # 2 per 5 ASCII characters, rounded up
    assert tokens.estimate_tokens("abcdef") == 3
    assert tokens.estimate_tokens("雨") == 3  # one per UTF-8 byte
    assert tokens.estimate_tokens("é") == 2
    assert tokens.estimate_tokens("🙂") == 4
    assert tokens.estimate_tokens("") == 0


def test_estimated_messages_use_a_larger_overhead():
    counter = tokens.counter_for("mistral-7b")
    assert counter.count_messages([{"role": "user", "content": "abcde"}]) == 4 + 2 + 2 + 3


@pytest.mark.parametrize("model, window", [
    ("gpt-3.5-turbo", 16385), ("gpt-3.5-turbo-0125", 16385), ("gpt-3.5-turbo-0613", 4096),
    ("gpt-3.5-turbo-16k-0613", 16385), ("gpt-3.5-turbo-instruct", 4096), ("gpt-4", 8192),
    ("gpt-4-0613", 8192), ("gpt-4-32k-0613", 32768), ("gpt-4-turbo-2024-04-09", 128000),
    ("gpt-4-1106-preview", 128000), ("gpt-4o", 128000), ("gpt-4o-2024-08-06", 128000),
    ("gpt-4o-mini", 128000), ("gpt-4.1", 1047576), ("gpt-4.1-mini-2025-04-14", 1047576), ("o1", 200000),
    ("o1-mini", 128000), ("o3-mini", 200000), ("o4-mini-2025-04-16", 200000), ("text-davinci-003", 4097),
    ("davinci-002", 16384), ("davinci", 2049), ("ft:gpt-4o-mini-2024-07-18:acme::abc123", 128000),
    ("ft:gpt-3.5-turbo-0613:acme:custom:id", 4096), ("davinci:ft-acme-2023-01-01", 2049),
    ("openai/gpt-4o", 128000), ("GPT-4", 8192), ("gpt-5-mini", 400000), ("gpt-5-chat-latest", 128000),
    ("gpt-oss-120b", 131072), ("codex-mini-latest", 200000), ("o1-pro", 200000),
])
def test_context_windows_of_known_models(model, window):
    assert tokens.context_window(model) == window


@pytest.mark.parametrize("model", ["llama3", "mistral-7b-instruct", "gpt4all-j", "", "o1x", "qwen2.5:7b"])
def test_unknown_models_get_the_documented_default(model):
    assert tokens.context_window(model) == tokens.DEFAULT_CONTEXT_WINDOW == 4096


@pytest.mark.parametrize("model, encoding", [
    ("gpt-3.5-turbo-0125", "cl100k_base"), ("gpt-3.5-turbo-instruct", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"),
    ("gpt-4o", "o200k_base"), ("gpt-4.1-nano", "o200k_base"), ("o3", "o200k_base"), ("o4-mini", "o200k_base"),
    ("chatgpt-4o-latest", "o200k_base"), ("text-davinci-003", "p50k_base"), ("davinci-002", "cl100k_base"),
    ("ft:gpt-4o-2024-08-06:acme::x", "o200k_base"), ("gpt-oss-20b", "o200k_base"), ("gpt-5-nano", "o200k_base"), ("davinci", None), ("llama3", None),
])
def test_encoding_per_model(model, encoding):
    assert tokens.encoding_name_for(model) == encoding


@pytest.mark.parametrize("name", tokens.SHIPPED)
def test_ranks_parse_exactly_as_tiktokens_own_loader(name, tmp_path, monkeypatch):
    import tiktoken.load
    plain = tmp_path / f"{name}.tiktoken"
    plain.write_bytes(gzip.decompress((tokens.DATA_DIR / f"{name}.tiktoken.gz").read_bytes()))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # a local file, no cache
    assert tokens._read_ranks(name, published_hash(name)) == tiktoken.load.load_tiktoken_bpe(str(plain))
