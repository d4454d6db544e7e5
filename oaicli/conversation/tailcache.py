"""The recent history of busy contexts kept in memory in front of a SQLite store, so that a request does not
read its context's whole history again (serve: Store.tail was ~13% of its CPU per answer at 100 clients).

`TailCache(store)` stands for the store. A context's entry holds the turns its last request was sent with
(whole exchanges, oldest first, with their token counts), plus the exchanges saved since through this cache
(the saved turns, with the ids of the rows just inserted). An entry is trusted only while nothing else wrote
the database: SQLite's `PRAGMA data_version` changes when ANOTHER connection commits (`sessions delete`, a
`chat --session`, another process), and then every entry is dropped; management calls made through the
cache drop them too. The history a request gets from an entry is the one a fresh read would give: the whole
session when its exact cost (kept up to date as exchanges are added) fits the room, else the same fit over the
same turns; when that fit would reach past the oldest kept turn of a session that has older ones, the store
is read instead. The entries are bounded by count and by bytes (least recently used go first),
so memory does not grow with the number of contexts.

Only for SQLite: a PostgreSQL store is shared by several instances, and nothing as cheap as data_version
tells one of them that another wrote, so serve reads it fresh every turn."""

from collections import OrderedDict
from dataclasses import dataclass

from oaicli.conversation import budget
from oaicli.conversation.rows import Turn
from oaicli.conversation.store import turn_cost

# At most +16 MiB whatever the load: serve's RSS is ~86 MiB, and the goal is within 1.2 x from 1,000 to 20,000 contexts.
MAX_CONTEXTS = 1024
MAX_BYTES = 16 * 1024 * 1024
# Bytes a cached turn costs besides its text (the Turn, its dict, its ids, usage): 0.4-0.6 KiB (tracemalloc).
TURN_OVERHEAD = 512


@dataclass
class Entry:
    turns: list[Turn]  # whole exchanges, oldest first
    complete: bool  # the session holds no turn older than these
    size: int  # bytes, roughly (see TURN_OVERHEAD)
    exchanges: int  # as budget.group_exchanges counts them
    cost: int | None = None  # the exact tokens of all the turns, counted by `counter`, with names or not
    counter: object = None
    named: bool = False

    def price(self, counter, named: bool) -> int:
        """The exact cost of every turn, counted once, then kept up to date as exchanges are added."""
        if not self.priced(counter, named):
            self.cost = sum(turn_cost(turn, counter, named) for turn in self.turns)
            self.counter, self.named = counter, named
        return self.cost

    def priced(self, counter, named: bool) -> bool:
        return self.cost is not None and self.counter is counter and self.named == named


class TailCache:
    def __init__(self, store, *, max_contexts: int = MAX_CONTEXTS, max_bytes: int = MAX_BYTES):
        self._store = store
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._bytes = 0
        self.max_contexts = max_contexts
        self.max_bytes = max_bytes
        self._version = self._data_version()
        self.hits = self.misses = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    def __len__(self) -> int:
        return len(self._entries)

    # What Context.tail asks for

    def fit_tail(self, session_id: int, **fit) -> list[Turn]:
        """What budget.fit_tail(store, session_id, **fit) returns, from memory when it can."""
        entry = self._entry(session_id)
        if entry is not None:
            kept = self._all_if_they_fit(entry, **fit)
            if kept is not None:
                self.hits += 1
                return kept
            kept = budget.fit_turns(entry.turns, **fit)
            if entry.complete or len(kept) < len(entry.turns):  # the fit stopped inside what is kept
                self.hits += 1
                self._store._cache_counts(kept)
                if len(kept) < len(entry.turns):
                    self._put(session_id, kept, complete=False)
                return kept
        self.misses += 1
        kept = budget.fit_tail(self._store, session_id, **fit)
        self._put(session_id, kept, complete=len(kept) == self._store.count_turns(session_id))
        return kept

    def _all_if_they_fit(self, entry: Entry, *, fixed, counter, context_window, answer_tokens, max_history,
                         named=False) -> list[Turn] | None:
        """The whole session when it obviously fits (the usual case): its exact cost, kept up to date, is
        within the room left beside `fixed`, and it is within max_history; then the walk of fit_turns would
        keep every exchange too, so it is skipped. None when only the walk can tell."""
        if not (entry.complete and counter.loaded) or (max_history is not None and entry.exchanges > max_history):
            return None
        unpriced = not entry.priced(counter, named)
        cost = entry.price(counter, named)
        if unpriced:
            self._store._cache_counts(entry.turns)  # counts computed for the price are stored, as a walk's are
        room = budget.budget(system=None, question=fixed, counter=counter, context_window=context_window,
                             answer_tokens=answer_tokens)
        return entry.turns if cost <= room else None

    # Writes through the cache

    def add_exchange(self, session_id: int, question: Turn, answer: Turn, **options) -> None:
        self._store.add_exchange(session_id, question, answer, **options)
        entry = self._entry(session_id)
        if entry is None:
            return
        # The turns as stored (add_exchange wrote these objects' fields, counts included); their ids are the
        # two rows this connection inserted last, in one transaction.
        with self._store.lock:
            last = self._store.db.execute("SELECT last_insert_rowid()").fetchone()[0]
        question.id, answer.id = last - 1, last
        question.dirty = answer.dirty = False
        self._append(session_id, entry, [question, answer])

    def reset(self, *args, **kwargs):
        self.clear()
        return self._store.reset(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self.clear()
        return self._store.delete(*args, **kwargs)

    def rename(self, *args, **kwargs):
        self.clear()
        return self._store.rename(*args, **kwargs)

    def import_messages(self, *args, **kwargs):
        self.clear()
        return self._store.import_messages(*args, **kwargs)

    def insert_copy(self, *args, **kwargs):
        self.clear()
        return self._store.insert_copy(*args, **kwargs)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    # The entries

    def _entry(self, session_id: int) -> Entry | None:
        """The context's entry if it can be trusted (nothing else wrote the database since it was made)."""
        version = self._data_version()
        if version != self._version:
            self._version = version
            self.clear()
            return None
        entry = self._entries.get(session_id)
        if entry is not None:
            self._entries.move_to_end(session_id)
        return entry

    def _put(self, session_id: int, turns: list[Turn], complete: bool) -> None:
        exchanges = len(budget.group_exchanges(turns))
        self._keep(session_id, Entry(turns, complete, _size(turns), exchanges))

    def _append(self, session_id: int, entry: Entry, saved: list[Turn]) -> None:
        """The entry with a just-saved exchange, updated without walking its turns again."""
        added = Entry(entry.turns + saved, entry.complete, entry.size + _size(saved), entry.exchanges + 1)
        if entry.cost is not None:
            added.cost = entry.cost + sum(turn_cost(turn, entry.counter, entry.named) for turn in saved)
            added.counter, added.named = entry.counter, entry.named
            self._store._cache_counts(saved)  # any count just made (the save had no counter) is stored
        self._keep(session_id, added)

    def _keep(self, session_id: int, entry: Entry) -> None:
        self._drop(session_id)
        if entry.size > self.max_bytes // 4:  # one huge context would push out everyone else
            return
        self._entries[session_id] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_contexts or self._bytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= oldest.size

    def _drop(self, session_id: int) -> None:
        entry = self._entries.pop(session_id, None)
        if entry is not None:
            self._bytes -= entry.size

    def _data_version(self) -> int:
        with self._store.lock:
            return self._store.db.execute("PRAGMA data_version").fetchone()[0]


def _size(turns: list[Turn]) -> int:
    return sum(len(turn.content) + TURN_OVERHEAD for turn in turns)
