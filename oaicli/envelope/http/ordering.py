"""Per-context ordering: one asyncio lock per context, dropped as soon as nobody holds or awaits it."""

import asyncio
from contextlib import asynccontextmanager


class ContextLocks:
    """Requests of one context run one at a time in the order they asked; other contexts do not wait.

    asyncio.Lock wakes its waiters first in, first out, and a newcomer queues behind any waiter, so
    the order is the order in which requests reached `hold`. Entries are counted and removed when the
    count falls to zero, so a server that has seen a million contexts keeps only the busy ones."""

    def __init__(self):
        self._entries: dict[object, list] = {}

    @asynccontextmanager
    async def hold(self, key):
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
