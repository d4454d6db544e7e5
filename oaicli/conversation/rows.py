"""The rows both conversation stores share (SQLite and PostgreSQL): turns and sessions as Python objects,
their column lists in row order, and the validation of an imported messages array."""

import hashlib
import json
import re
from dataclasses import dataclass, field

from oaicli.core.errors import InputError

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_NAME_OK = re.compile(r"[A-Za-z0-9_-]{1,64}")
SESSION_COLUMNS = "id, name, kind, model, system, created_at, updated_at"
TURN_COLUMNS = "id, role, content, tokens, tokens_encoding, question_id, model, usage, created_at, user_id"

@dataclass
class Turn:
    """One message of a session. `tokens` is the content's cached count, valid for the tokenizer `encoding`."""
    role: str
    content: str
    tokens: int | None = None
    question_id: str | None = None
    model: str | None = None
    usage: dict | None = None
    created_at: float = 0.0
    user_id: str | None = None
    id: int | None = None
    encoding: str | None = None
    response_id: str | None = None  # the Responses API id of an answer (server-side context)
    dirty: bool = field(default=False, repr=False, compare=False)  # count computed, not yet cached

    def message(self, named: bool = False) -> dict:
        """The turn as a request message; `named`: a user turn says who asked (shared group contexts)."""
        message = {"role": self.role, "content": self.content}
        name = self.speaker() if named else None
        if name:
            message["name"] = name
        return message

    def speaker(self) -> str | None:
        """The `name` that tells the model which user asked: for user turns that have a user_id."""
        return speaker_name(self.user_id) if self.role == "user" and self.user_id else None



@dataclass
class Session:
    id: int
    name: str
    model: str | None
    system: str | None
    created_at: float
    updated_at: float
    kind: str = "named"  # "named" or "envelope"



def turn_from_row(row) -> Turn:
    id_, role, content, tokens, encoding, question_id, model, usage, created_at, user_id = row
    return Turn(role=role, content=content, tokens=tokens, question_id=question_id, model=model,
                usage=json.loads(usage) if usage else None, created_at=created_at, user_id=user_id,
                id=id_, encoding=encoding)


def session_from_row(row) -> Session | None:
    if row is None:
        return None
    id_, name, kind, model, system, created_at, updated_at = row
    return Session(id=id_, name=name, model=model, system=system, created_at=created_at,
                   updated_at=updated_at, kind=kind)





def content_tokens(turn: Turn, counter) -> int:
    """The turn's content count for this counter: the cached one when it was made by the same tokenizer."""
    if turn.tokens is None or turn.encoding != counter.cache_key:
        turn.tokens = counter.count_text(turn.content)
        turn.encoding = counter.cache_key
        turn.dirty = True
    return turn.tokens

def split_messages(messages) -> tuple[str | None, list[tuple[str, str]]]:
    """Validate a messages array; returns the leading system prompt and the (role, content) turns."""
    if not isinstance(messages, list):
        raise InputError("Expected a JSON array of messages ({\"role\": ..., \"content\": ...}).")
    system = None
    turns = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InputError(f"Message {index} is not an object.")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InputError(f"Message {index} has role {role!r}; expected one of {', '.join(ROLES)}.")
        if isinstance(content, list):  # content parts: keep the text
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise InputError(f"Message {index} has no text content.")
        if role == "system" and index == 0:
            system = content
        else:
            turns.append((role, content))
    return system, turns


def speaker_name(user_id: str) -> str:
    """A user_id as a message's `name`, which OpenAI restricts to letters, digits, `_` and `-` (64 at most):
    kept as it is when it qualifies, else its safe characters and a hash, so two users never share one."""
    if _NAME_OK.fullmatch(user_id):
        return user_id
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", user_id).strip("_")[:40]
    return f"{safe or 'user'}-{hashlib.sha256(user_id.encode('utf-8')).hexdigest()[:12]}"
