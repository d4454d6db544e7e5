"""Token counting and context windows: exact for OpenAI models (tiktoken, offline), a safe estimate otherwise.

The BPE rank files of cl100k_base, o200k_base and p50k_base ship gzipped in oaicli/data (see
oaicli/data/README.md for where they came from); nothing is ever downloaded. tiktoken is imported
only when a count is first needed, and each encoding is built once per process.
"""

import gzip
import hashlib
import math
import threading
from dataclasses import dataclass
from pathlib import Path

from oaicli.core.models import base_model, lookup

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # oaicli/data, shipped as package data

# Used for models the table below does not know (other servers' models): small enough to be safe
# for the common 4k-token local models; `--context-window N` overrides it.
DEFAULT_CONTEXT_WINDOW = 4096

# Context windows (input + output tokens) of OpenAI models. A model matches the longest entry that
# equals it or that it starts with followed by "-" (dated variants such as gpt-4o-2024-08-06).
CONTEXT_WINDOWS = {
    "gpt-3.5-turbo": 16385,
    "gpt-3.5-turbo-0301": 4096,
    "gpt-3.5-turbo-0613": 4096,
    "gpt-3.5-turbo-16k": 16385,
    "gpt-3.5-turbo-instruct": 4096,
    "gpt-35-turbo": 16385,
    "gpt-35-turbo-16k": 16385,
    "gpt-35-turbo-instruct": 4096,
    "gpt-4": 8192,
    "gpt-4-32k": 32768,
    "gpt-4-turbo": 128000,
    "gpt-4-1106": 128000,
    "gpt-4-0125": 128000,
    "gpt-4-vision": 128000,
    "gpt-4o": 128000,
    "gpt-4o-mini": 128000,
    "chatgpt-4o": 128000,
    "gpt-4.1": 1047576,
    "gpt-4.5": 128000,
    "gpt-5": 400000,
    "gpt-5-chat": 128000,
    "gpt-oss": 131072,
    "codex-mini": 200000,
    "o1": 200000,
    "o1-preview": 128000,
    "o1-mini": 128000,
    "o3": 200000,
    "o3-mini": 200000,
    "o4-mini": 200000,
    "text-davinci-003": 4097,
    "text-davinci-002": 4097,
    "text-davinci-001": 2049,
    "code-davinci-002": 8001,
    "text-curie-001": 2049,
    "text-babbage-001": 2049,
    "text-ada-001": 2049,
    "davinci": 2049,
    "curie": 2049,
    "babbage": 2049,
    "ada": 2049,
    "davinci-002": 16384,
    "babbage-002": 16384,
}

# Which tiktoken encoding each model family uses (tiktoken's own model table, restricted to the
# encodings shipped here). r50k_base models (davinci, curie, ...) fall back to the estimate.
ENCODINGS = {
    "gpt-4o": "o200k_base",
    "chatgpt-4o": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-5": "o200k_base",
    "gpt-oss": "o200k_base",  # o200k_harmony: the same ranks, other special tokens
    "codex-mini": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "o4-mini": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base",
    "gpt-35-turbo": "cl100k_base",
    "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base",
    "text-embedding-3": "cl100k_base",
    "text-davinci-003": "p50k_base",
    "text-davinci-002": "p50k_base",
    "code-davinci-002": "p50k_base",
    "code-davinci-001": "p50k_base",
    "code-cushman-002": "p50k_base",
    "code-cushman-001": "p50k_base",
    "davinci-codex": "p50k_base",
    "cushman-codex": "p50k_base",
    "text-davinci-edit-001": "p50k_base",
    "code-davinci-edit-001": "p50k_base",
}
SHIPPED = ("cl100k_base", "o200k_base", "p50k_base")

# A rough cost for an image part of a message (a 512px tile at high detail); images are not counted
# exactly, so this errs on the large side.
IMAGE_PART_TOKENS = 765


def context_window(model: str) -> int:
    """The model's context window in tokens; DEFAULT_CONTEXT_WINDOW for models not in the table."""
    return lookup(CONTEXT_WINDOWS, model) or DEFAULT_CONTEXT_WINDOW


def encoding_name_for(model: str) -> str | None:
    """The shipped tiktoken encoding of an OpenAI model, or None (then counts are estimates)."""
    return lookup(ENCODINGS, model)


def estimate_tokens(text: str) -> int:
    """A conservative count for text whose tokenizer is unknown (other servers' models).

    Two tokens per five ASCII characters (English averages about four characters a token, code
    about two and a half), and one token per UTF-8 byte of every other character: 3 per CJK
    character, 2 per Cyrillic or accented letter, 4 per emoji. Byte-level BPE tokenizers never
    spend more than one token per byte, so non-ASCII text is never undercounted.
    """
    ascii_chars = 0
    other_bytes = 0
    for char in text:
        code = ord(char)
        if code < 0x80:
            ascii_chars += 1
        else:
            other_bytes += 2 if code < 0x800 else 3 if code < 0x10000 else 4
    return math.ceil(ascii_chars * 2 / 5) + other_bytes


_encodings: dict = {}
_encodings_lock = threading.Lock()


class EncodingFileError(RuntimeError):
    """A shipped encoding file is missing or does not match OpenAI's published hash."""


def _read_ranks(name: str, expected_hash: str | None) -> dict[bytes, int]:
    import binascii
    path = DATA_DIR / f"{name}.tiktoken.gz"
    try:
        contents = gzip.decompress(path.read_bytes())
    except OSError as exc:
        raise EncodingFileError(f"cannot read {path}: {exc}") from exc
    if expected_hash and hashlib.sha256(contents).hexdigest() != expected_hash:
        raise EncodingFileError(f"{path} does not match OpenAI's published sha256 {expected_hash}")
    # Each line is "<base64 token> <rank>"; splitting the whole file at once is twice as fast as per line.
    fields = contents.split()
    return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2])))


def get_encoding(name: str):
    """A tiktoken Encoding built from the shipped ranks, once per process.

    The pattern and special tokens come from tiktoken's own definitions (tiktoken_ext.openai_public),
    whose loader is pointed at the shipped file for the duration of the call; tiktoken passes its
    expected sha256, which the shipped file must match.
    """
    loaded = _encodings.get(name)  # no lock once loaded: serve counts on every request
    if loaded is not None:
        return loaded
    with _encodings_lock:
        if name not in _encodings:
            if name not in SHIPPED:
                raise KeyError(f"encoding {name!r} is not shipped with oaicli")
            import tiktoken
            from tiktoken_ext import openai_public
            original = openai_public.load_tiktoken_bpe
            openai_public.load_tiktoken_bpe = lambda _url, expected_hash=None: _read_ranks(name, expected_hash)
            try:
                spec = openai_public.ENCODING_CONSTRUCTORS[name]()
            finally:
                openai_public.load_tiktoken_bpe = original
            _encodings[name] = tiktoken.Encoding(**spec)
        return _encodings[name]


@dataclass
class TokenCounter:
    """Counts tokens of text and chat messages for one model.

    Message overhead follows OpenAI's cookbook ("How to count tokens with tiktoken"): each message
    costs `tokens_per_message` plus its fields, a `name` field adds `tokens_per_name`, and the reply
    is primed with 3 more tokens. Estimates use 4 per message and 1 per name, erring high.
    """

    model: str
    encoding_name: str | None
    tokens_per_message: int = 3
    tokens_per_name: int = 1
    reply_priming: int = 3

    @property
    def exact(self) -> bool:
        return self.encoding_name is not None

    @property
    def loaded(self) -> bool:
        """Whether exact counts cost nothing more now: no encoding is needed, or it is built in this process."""
        return self.encoding_name is None or self.encoding_name in _encodings

    @property
    def cache_key(self) -> str:
        """What a cached per-turn count is tagged with, so a count is reused only for the same tokenizer."""
        return self.encoding_name or "estimate"

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        if self.encoding_name is None:
            return estimate_tokens(text)
        return len(get_encoding(self.encoding_name).encode_ordinary(text))

    def count_content(self, content) -> int:
        """A message's content: a string, or a list of parts (text parts counted, images estimated)."""
        if content is None:
            return 0
        if isinstance(content, str):
            return self.count_text(content)
        if isinstance(content, list):
            return sum(self._count_part(part) for part in content)
        return self.count_text(_as_json(content))

    def _count_part(self, part) -> int:
        if isinstance(part, dict) and part.get("type") == "text":
            return self.count_text(part.get("text") or "")
        if isinstance(part, dict) and part.get("type") in ("image_url", "input_image"):
            return IMAGE_PART_TOKENS
        return self.count_text(_as_json(part))

    def message_tokens(self, role: str, content_tokens: int, name: str | None = None) -> int:
        """The cost of one message whose content is already counted (a cached turn)."""
        cost = self.tokens_per_message + self._role_tokens(role) + content_tokens
        if name:
            cost += self.tokens_per_name + self.count_text(name)
        return cost

    def _role_tokens(self, role: str) -> int:
        """A role's count, remembered: a history of N turns would otherwise encode N role names."""
        key = (type(self), self.encoding_name, role)  # a ByteBound counts the same role in bytes
        count = _ROLE_TOKENS.get(key)
        if count is None:
            count = _ROLE_TOKENS[key] = self.count_text(role)
        return count

    def count_message(self, message: dict) -> int:
        """One message, without the reply priming."""
        cost = self.tokens_per_message
        for key, value in message.items():
            if key == "content":
                cost += self.count_content(value)
            elif isinstance(value, str):
                cost += self.count_text(value)
            elif value is not None:
                cost += self.count_text(_as_json(value))
            if key == "name":
                cost += self.tokens_per_name
        return cost

    def count_messages(self, messages: list[dict]) -> int:
        """A whole request's messages, with the 3 tokens that prime the reply."""
        return sum(self.count_message(m) for m in messages) + self.reply_priming


_ROLE_TOKENS: dict[tuple, int] = {}


class ByteBound(TokenCounter):
    """Counts like its model's counter, but each text as its UTF-8 bytes, so it needs no encoding (building
    one takes 0.1-0.3 s): a byte-level BPE token is at least one byte, so every count is at least the exact one.
    Estimates (models with no shipped encoding) are cheap already and stay as they are."""

    def count_text(self, text: str) -> int:
        if self.encoding_name is None:
            return super().count_text(text)
        return utf8_length(text)


def utf8_length(text: str) -> int:
    """The UTF-8 bytes of text; a lone surrogate counts 3, as tiktoken sends it (as U+FFFD)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def byte_bound(counter: TokenCounter) -> ByteBound:
    """The upper-bound twin of `counter`: the same per-message overheads, texts counted by their bytes."""
    return ByteBound(counter.model, counter.encoding_name, counter.tokens_per_message, counter.tokens_per_name,
                     counter.reply_priming)


def _as_json(value) -> str:
    import json
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def counter_for(model: str) -> TokenCounter:
    """A counter for the model: exact when it uses a shipped encoding, else the estimate."""
    encoding = encoding_name_for(model)
    if encoding is None:
        return TokenCounter(model, None, tokens_per_message=4, tokens_per_name=1)
    if base_model(model).startswith("gpt-3.5-turbo-0301"):
        return TokenCounter(model, encoding, tokens_per_message=4, tokens_per_name=-1)
    return TokenCounter(model, encoding)
