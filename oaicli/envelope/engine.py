"""The upper-application envelope: one JSON request in, one JSON response out, per context.

`Envelope` is the one implementation, written without I/O (parse -> begin -> finish/fail) so that
`chat --envelope` (stdin/stdout, sync httpx, see `LineRunner`) and `serve` (HTTP) both drive it.
Request, response and codes are documented in the README, section "The upper-application envelope".
"""

import json
import threading
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from oaicli.api.completions import answer_of
from oaicli.conversation.turn import Context, is_context_error, shrink
from oaicli.core.errors import ApiError, InputError, NetworkError, PieceRedactor, redact

VERSION = "1.0.0"
SPOKEN_MAJOR = "1"


class Codes:
    OK = 0
    NOT_JSON = 1001  # the line is not a JSON object (or not UTF-8)
    BAD_VERSION = 1002  # version missing or not 1.x
    BAD_FIELD = 1003  # pars missing; user_id, question, group_id or question_id missing, empty or not a string
    TOO_LONG = 1004  # the question is longer than --max-question-chars
    UPSTREAM_REJECTED = 2001  # the API refused the request (4xx other than auth and context length)
    UPSTREAM_FAILED = 2002  # the API failed: 429/5xx after retries, network error, dropped stream
    CONTEXT_TOO_LONG = 2003  # the question does not fit the model's context window, even with no history
    UPSTREAM_AUTH = 2004  # the API refused the key (401/403)
    UNAUTHORIZED = 1005  # serve only: no or wrong bearer token
    INTERNAL = 5000  # a bug or a local failure (the store); the request was not answered


ID_FIELDS = ("user_id", "group_id", "question_id")


@dataclass
class Parsed:
    ids: dict  # user_id, group_id, question_id (generated when the request left it empty)
    question: str
    context_key: tuple  # (group_id, user_id), or (group_id, "*") with --group-shared
    session_name: str  # the store session holding this context
    given_question_id: bool = False


@dataclass
class Pending:
    ids: dict
    question: str
    session_id: int | None  # None: a new context, created when its first answer is saved
    history: list
    request_body: dict
    session_name: str = ""
    retried: bool = False
    # Server-side context (--context server): the context's Conversation, or None while it has none yet;
    # then `history` is what a new one is seeded with (NewConversation), and `new_conversation` its id.
    conversation: str | None = None
    new_conversation: str | None = None
    # --context previous: the context's last stored answer, which the request chains on.
    previous_response_id: str | None = None


@dataclass
class NewConversation:
    """A step of a turn (Envelope.turn): create a Conversation on the server holding these history turns,
    and send its id back."""
    history: list


@dataclass
class DropConversation:
    """A step of a turn: delete this Conversation, made for a question that then failed, so the server is
    left as it was (like the local store); a failure to delete is ignored (it holds no turns)."""
    conversation: str


def response(code: int, msg: str, data: dict | None = None) -> dict:
    return {"version": VERSION, "code": code, "msg": msg, "data": data or {}}


def session_name(group_id: str, user_id: str, group_shared: bool = False) -> str:
    """`envelope:<group_id>:<user_id>`, or `envelope:<group_id>:*` for a shared group context.
    `%`, `:` and `*` inside ids are escaped so that two different contexts never share a name (a user
    whose id is `*` is not the group's shared context)."""
    def esc(text: str) -> str:
        return text.replace("%", "%25").replace(":", "%3A").replace("*", "%2A")
    user = "*" if group_shared and group_id else esc(user_id)
    return f"envelope:{esc(group_id)}:{user}"


class Envelope:
    def __init__(self, store, *, model: str, system: str | None, group_shared: bool = False,
                 max_question_chars: int = 32000, answer_tokens: int | None = None,
                 context_window: int | None = None, stream: bool = False, extra_params: dict | None = None,
                 max_history: int | None = None, include_usage: bool = True, context: str = "local"):
        self.store = store
        self.context_mode = context  # local, previous (previous_response_id) or server (a Conversation)
        self.model = model
        self.system = system
        self.group_shared = group_shared
        self.max_question_chars = max_question_chars
        self.stream = stream
        self.include_usage = include_usage
        self.extra_params = dict(extra_params or {})
        self.context = Context(model, system=system, context_window=context_window, answer_tokens=answer_tokens,
                               max_history=max_history)

    def warm_up(self) -> None:
        """Load the tokenizer in the background (about half a second) while first questions, which need
        no counting, are already out; later questions then find it ready."""
        if self.context.counter.exact:
            threading.Thread(target=self.context.counter.count_text, args=("warm up",), daemon=True,
                             name="tokenizer-warm-up").start()

    def with_store(self, store) -> "Envelope":
        """The same engine on another store (serve's, which stops saving at shutdown)."""
        clone = object.__new__(Envelope)
        clone.__dict__.update(self.__dict__)
        clone.store = store
        return clone

    # Parsing: everything wrong with a line is found here, before any lock or request.

    def parse(self, raw) -> "Parsed | dict":
        if isinstance(raw, (bytes, bytearray)):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                return response(Codes.NOT_JSON, "the line is not valid UTF-8")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                return response(Codes.NOT_JSON, f"the line is not JSON: {exc}")
        if not isinstance(raw, dict):
            return response(Codes.NOT_JSON, "the line is not a JSON object")
        pars = raw.get("pars")
        ids = {k: pars[k] for k in ID_FIELDS if isinstance(pars, dict) and _is_text(pars.get(k))}
        problem = _version_problem(raw.get("version")) or self._pars_problem(pars)
        if problem:
            return response(problem[0], problem[1], ids)
        group_id, user_id = pars.get("group_id") or "", pars["user_id"]
        given = bool(pars.get("question_id"))
        ids = {"user_id": user_id, "group_id": group_id,
               "question_id": pars.get("question_id") or uuid.uuid4().hex}
        shared = self.group_shared and bool(group_id)
        return Parsed(ids, pars["question"], (group_id, "*" if shared else user_id),
                      session_name(group_id, user_id, self.group_shared), given)

    def _pars_problem(self, pars) -> tuple[int, str] | None:
        if not isinstance(pars, dict):
            return Codes.BAD_FIELD, "pars is missing or not an object"
        for name in ("user_id", "question"):
            if name not in pars or pars[name] is None:
                return Codes.BAD_FIELD, f"pars.{name} is missing"
            if not isinstance(pars[name], str):
                return Codes.BAD_FIELD, f"pars.{name} must be a string, not {_json_type(pars[name])}"
            if not pars[name].strip():
                return Codes.BAD_FIELD, f"pars.{name} is empty"
        for name in ("group_id", "question_id"):
            if pars.get(name) is not None and not isinstance(pars[name], str):
                return Codes.BAD_FIELD, f"pars.{name} must be a string, not {_json_type(pars[name])}"
        for name in ("user_id", "question", "group_id", "question_id"):
            if isinstance(pars.get(name), str) and not _is_text(pars[name]):
                return Codes.BAD_FIELD, f"pars.{name} is not valid Unicode text (it holds a lone surrogate)"
        if len(pars["question"]) > self.max_question_chars:
            return Codes.TOO_LONG, (f"pars.question has {len(pars['question'])} characters; "
                                    f"the limit is {self.max_question_chars}")
        return None

    # A request's life, while the caller holds the context's lock.

    def begin(self, parsed: Parsed) -> "Pending | dict":
        """The stored answer of a repeated question_id, or the request to send."""
        if parsed.given_question_id:
            replay = self._replay(parsed)
            if replay is not None:
                return replay
            # A shared store (PostgreSQL) lets a unique key decide which request answers a question_id;
            # the loser waited for the winner's turn and returns its stored answer.
            claim = getattr(self.store, "claim_question", None)
            if claim is not None and not claim(parsed.session_name, parsed.ids["question_id"],
                                               parsed.ids["user_id"]):
                return self._replay(parsed) or response(
                    Codes.UPSTREAM_FAILED, "the same question_id is being answered by another request", parsed.ids)
        session = self.store.get_session(parsed.session_name)  # a new context is created by finish()
        speaker = self._speaker(parsed.ids)
        if self.server_context:
            conversation = self.store.conversation_of(session.id) if session else None
            return self._on_server(parsed, session, speaker, conversation)
        previous = self.store.last_response_id(session.id) if session and self.context_mode == "previous" else None
        if previous:  # only the new question, chained on the last answer the server keeps
            return Pending(parsed.ids, parsed.question, session.id, [],
                           self._body(self.context.first_messages(parsed.question, speaker), previous_response_id=previous),
                           parsed.session_name, previous_response_id=previous)
        return self._local(parsed, session, speaker)

    @property
    def server_context(self) -> bool:
        return self.context_mode == "server"

    def _local(self, parsed: Parsed, session, speaker: str | None) -> "Pending | dict":
        """The request with the history from the local store (--context local; previous with no stored
        answer to chain on yet)."""
        try:
            history = self.context.tail(self.store, session.id, parsed.question, speaker) if session else []
            messages = self.context.messages(history, parsed.question, speaker)
        except InputError as exc:
            return response(Codes.CONTEXT_TOO_LONG, exc.message, parsed.ids)
        return Pending(parsed.ids, parsed.question, session.id if session else None, history, self._body(messages),
                       parsed.session_name)

    def _on_server(self, parsed: Parsed, session, speaker: str | None, conversation: str | None) -> Pending:
        """The request for `conversation`; without one, the local history goes with it, and the turn
        seeds a new Conversation with it."""
        history = [] if conversation or session is None else self.context.tail(
            self.store, session.id, parsed.question, speaker)
        return Pending(parsed.ids, parsed.question, session.id if session else None, history,
                       self._body(self.context.first_messages(parsed.question, speaker), conversation=conversation),
                       parsed.session_name, conversation=conversation)

    @staticmethod
    def _server_context_gone(pending: Pending, error: Exception) -> str | None:
        """What the server no longer has of the context (a stored response expires after 30 days, a
        Conversation can be deleted), or None: the local store, the source of truth, still holds every
        turn, so the context is sent from it instead of answering every later question with 2001. A
        Conversation made for this very turn is not retried."""
        if not isinstance(error, ApiError) or error.status not in (400, 404):
            return None
        if pending.previous_response_id and error.param == "previous_response_id":
            return f"response {pending.previous_response_id}"
        if error.param == "conversation" and pending.conversation is not None and pending.new_conversation is None:
            return f"conversation {pending.conversation}"
        return None

    def _speaker(self, ids: dict) -> str | None:
        """In a group context its users share, the asker's user_id: user turns then carry it as `name`."""
        return ids["user_id"] if self.group_shared and ids["group_id"] else None

    def _replay(self, parsed: Parsed) -> dict | None:
        session = self.store.get_session(parsed.session_name)
        if session is None:
            return None
        user = parsed.ids["user_id"]
        found = self.store.find_exchange(session.id, parsed.ids["question_id"], user)
        if found is None:
            return None
        _, answer = found
        return response(Codes.OK, "ok", {**parsed.ids, "answer": answer.content, "model": answer.model,
                                         "usage": answer.usage})

    def _body(self, messages: list[dict], **server_context) -> dict:
        """The chat-shaped request (envelope/upstream.py sends it through the chosen API), with the
        conversation or previous_response_id that holds the context on the server."""
        body = {"model": self.model, "messages": messages, **self.extra_params,
                **{key: value for key, value in server_context.items() if value}}
        if self.stream:
            body["stream"] = True
            if self.include_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def retry_smaller(self, pending: Pending) -> "Pending | None":
        """After context_length_exceeded: the same question with the older half of the history dropped,
        once. None when it was already retried or there is no history left to drop."""
        smaller = shrink(pending.history)
        if pending.retried or smaller is None:
            return None
        speaker = self._speaker(pending.ids)
        if self.server_context:  # the history seeds the new Conversation; the request holds the question
            body = self._body(self.context.first_messages(pending.question, speaker))
        else:
            body = self._body(self.context.messages(smaller, pending.question, speaker))
        return Pending(pending.ids, pending.question, pending.session_id, smaller, body, pending.session_name,
                       retried=True)

    def finish(self, pending: Pending, completion: dict) -> dict:
        """Save the exchange (one transaction) and answer."""
        if not completion.get("choices"):
            return response(Codes.UPSTREAM_FAILED, "the API answered without any choice", pending.ids)
        if pending.session_id is None:
            pending.session_id = self.store.ensure_session(pending.session_name, model=self.model,
                                                           system=self.system, kind="envelope").id
        self.context.save(self.store, pending.session_id, pending.question, completion,
                          question_id=pending.ids["question_id"], user_id=pending.ids["user_id"],
                          conversation_id=pending.new_conversation)
        return response(Codes.OK, "ok", {**pending.ids, "answer": answer_of(completion),
                                         "model": completion.get("model") or self.model,
                                         "usage": completion.get("usage")})

    def fail(self, pending_or_none, error: Exception) -> dict:
        """The error response for a request that could not be answered; nothing is saved."""
        ids = getattr(pending_or_none, "ids", None) or {}
        code, msg = classify(error)
        return response(code, msg, ids)

    def turn(self, parsed: Parsed, notice=None):
        """One request's whole turn, while the caller holds the context's lock, as a generator both
        drivers run (the stdio runner with the blocking client, serve with the async one): it yields each
        step, receives its result (or the step's exception, through `.throw`), and returns the response
        dict. The steps: a Pending whose `request_body` is to be sent (the result: the completion), and,
        with --context server, NewConversation (the result: its id) and DropConversation. It holds the
        replay, the server-side context, the one shrink-and-retry on context_length_exceeded and the save,
        so no driver repeats them."""
        pending = self.begin(parsed)
        while not isinstance(pending, dict):
            try:
                if self.server_context and pending.conversation is None:
                    pending.conversation = pending.new_conversation = yield NewConversation(pending.history)
                    pending.request_body["conversation"] = pending.conversation
                completion = yield pending
            except Exception as exc:
                gone = self._server_context_gone(pending, exc)
                if pending.new_conversation:
                    yield DropConversation(pending.new_conversation)
                if gone:
                    if notice:
                        notice(f"The server no longer has {gone} of {parsed.session_name}; sending its history "
                               "from the local store.")
                    session = self.store.get_session(parsed.session_name)
                    pending = (self._on_server(parsed, session, self._speaker(parsed.ids), None) if self.server_context
                               else self._local(parsed, session, self._speaker(parsed.ids)))
                    continue
                smaller = self.retry_smaller(pending) if is_context_error(exc) else None
                if smaller is None:
                    return self.fail(pending, exc)
                if notice:
                    notice(f"The context of {parsed.session_name} was too long for the server; retrying once "
                           f"with {len(pending.history) - len(smaller.history)} fewer earlier turns.")
                pending = smaller
                continue
            return self.finish(pending, completion)
        return pending

    def delta_line(self, pending: Pending, text: str) -> dict:
        return response(Codes.OK, "delta", {**pending.ids, "delta": redact(text)})


def classify(error: Exception) -> tuple[int, str]:
    text = redact(" ".join(str(getattr(error, "message", None) or error).split()))
    if isinstance(error, ApiError):
        label = f"{text} (HTTP {error.status}{', ' + error.code if error.code else ''})"
        if error.status in (401, 403):
            return Codes.UPSTREAM_AUTH, f"the API refused the key: {label}"
        if is_context_error(error):
            return Codes.CONTEXT_TOO_LONG, f"the context is too long for the model: {label}"
        if 400 <= error.status < 500 and error.status not in (408, 429):
            return Codes.UPSTREAM_REJECTED, f"the API rejected the request: {label}"
        return Codes.UPSTREAM_FAILED, f"the API failed: {label}"
    if isinstance(error, InputError):
        return Codes.CONTEXT_TOO_LONG, text
    if isinstance(error, NetworkError):
        return Codes.UPSTREAM_FAILED, f"the API failed: {text}"
    return Codes.INTERNAL, f"internal error ({error.__class__.__name__}): {text}"


def _version_problem(version) -> tuple[int, str] | None:
    if version is None:
        return Codes.BAD_VERSION, f"version is missing; this program speaks {VERSION}"
    if not isinstance(version, str) or version.split(".")[0] != SPOKEN_MAJOR:
        shown = json.dumps(version, ensure_ascii=not _is_text(json.dumps(version, ensure_ascii=False)))
        return Codes.BAD_VERSION, f"version {shown} is not supported; " \
                                  f"this program speaks {VERSION}"
    return None


def _is_text(value) -> bool:
    """A string that can be stored and written as UTF-8: JSON's \\ud800 escapes decode to lone surrogates,
    which cannot."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


class DeltaWriter:
    """Writes a streamed answer's pieces as delta lines, redacted as a whole: a key a server echoes split
    across two pieces is still masked (a tail that could start it waits for the next piece or drain())."""

    def __init__(self, write_text):
        self.write_text = write_text
        self.redactor = PieceRedactor()

    def __call__(self, text: str) -> None:
        text = self.redactor.feed(text)
        if text:
            self.write_text(text)

    def drain(self) -> None:
        text = self.redactor.drain()
        if text:
            self.write_text(text)


# The stdin/stdout driver used by `chat --envelope`: I/O lives here, the rules above.

def read_ahead(concurrency: int) -> int:
    """Lines read but not yet answered, at most."""
    return max(256, concurrency * 16)


class LineRunner:
    """Answers lines as they are read. concurrency 1: in order, in this thread. N > 1: up to N contexts at
    once on a thread pool, each context's lines strictly in order. Reading stops while read_ahead(N) lines
    wait, so memory stays flat however long the input; the room lets lines of other contexts get past a
    context that has many lines queued."""

    def __init__(self, engine: Envelope, upstream, write, concurrency: int = 1, notice=None):
        self.engine = engine  # its Store is shared by the threads (it serializes its statements)
        # upstream.perform(step, on_text) does each step of a turn (envelope/upstream.py's Upstream).
        self.upstream = upstream
        self.write = write  # write(response dict), thread-safe, flushed
        self.concurrency = concurrency
        self.notice = notice or (lambda text: None)
        self._stopping = threading.Event()  # set on Ctrl-C: no more answers, nothing more saved

    def run(self, lines) -> None:
        if self.concurrency <= 1:
            for line in lines:
                if line.strip():
                    self._one(line)
            return
        self._run_pool(lines)

    def _one(self, line) -> None:
        parsed = self._parse(line)
        if isinstance(parsed, dict):
            self.write(parsed)
        else:
            self.answer(parsed)

    def _parse(self, line) -> "Parsed | dict":
        try:
            return self.engine.parse(line)
        except Exception as exc:  # a bug in parsing: one coded line, and the loop goes on
            return self.engine.fail(None, exc)

    def answer(self, parsed: Parsed) -> None:
        engine = self.engine
        try:
            with engine.store.exclusive(parsed.session_name):
                result = self._answer_locked(engine, parsed)
        except Exception as exc:  # the store failed: still one line, and the loop goes on
            result = engine.fail(parsed, exc)
        if not self._stopping.is_set():
            self.write(result)

    def _answer_locked(self, engine: Envelope, parsed: Parsed) -> dict | None:
        turn = engine.turn(parsed, self.notice)
        try:
            step = next(turn)
            while True:
                try:
                    result = self._perform(engine, step)
                except Exception as exc:
                    step = turn.throw(exc)
                    continue
                except BaseException:  # Ctrl-C: a Conversation made for this question goes with it
                    if getattr(step, "new_conversation", None):
                        self.upstream.perform(DropConversation(step.new_conversation))
                    raise
                if self._stopping.is_set():  # Ctrl-C came while the answer arrived: it is not saved
                    turn.close()
                    return None
                step = turn.send(result)
        except StopIteration as done:
            return done.value

    def _perform(self, engine: Envelope, step):
        if not isinstance(step, Pending):
            return self.upstream.perform(step)
        deltas = self._delta_writer(engine, step)
        completion = self.upstream.perform(step, deltas)
        if deltas is not None and not self._stopping.is_set():
            deltas.drain()
        return completion

    def _delta_writer(self, engine: Envelope, pending: Pending) -> "DeltaWriter | None":
        if not engine.stream:
            return None
        return DeltaWriter(lambda text: None if self._stopping.is_set() else
                           self.write(engine.delta_line(pending, text)))

    def _run_pool(self, lines) -> None:
        queues: dict[tuple, deque] = {}
        guard = threading.Lock()
        room = threading.BoundedSemaphore(read_ahead(self.concurrency))

        def drain(key):
            while True:
                with guard:
                    queue = queues[key]
                    if not queue or self._stopping.is_set():
                        del queues[key]
                        return
                    parsed = queue[0]
                try:
                    self.answer(parsed)
                finally:
                    with guard:
                        queue.popleft()
                    room.release()

        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="envelope")
        try:
            for line in lines:
                if not line.strip():
                    continue
                parsed = self._parse(line)
                if isinstance(parsed, dict):
                    self.write(parsed)
                    continue
                room.acquire()
                with guard:
                    busy = parsed.context_key in queues
                    queues.setdefault(parsed.context_key, deque()).append(parsed)
                if not busy:
                    pool.submit(drain, parsed.context_key)
            pool.shutdown(wait=True)
        except BaseException:  # Ctrl-C: queued lines are not started, answers in flight are not saved
            self._stopping.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
