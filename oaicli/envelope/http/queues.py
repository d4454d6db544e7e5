"""Per-context order for `serve`: a place in the context's queue is taken synchronously, on arrival.

Requests of one context are answered one at a time in the order they arrived; other contexts never wait.
`join(key)` is a plain call, made by the request handler before its first `await`, so a request that is
answered later in a task of its own (a streamed one) keeps the place it had when it arrived; that is what
an asyncio.Lock taken inside the task could not promise (it joined one loop step late). A context's entry
exists only while it has requests, so memory follows the busy contexts, not every context ever seen.
"""

import asyncio
from collections import deque


class ContextQueues:
    def __init__(self):
        self._queues: dict[object, deque] = {}

    def join(self, key) -> "Ticket":
        """Take the next place in the context's queue, now."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        ticket = Ticket(self, key, first=not queue)
        queue.append(ticket)
        return ticket

    def _leave(self, ticket: "Ticket") -> None:
        queue = self._queues[ticket.key]
        was_first = queue[0] is ticket
        queue.remove(ticket)
        if not queue:
            del self._queues[ticket.key]
        elif was_first:
            queue[0]._wake()

    def __len__(self) -> int:
        return len(self._queues)


class Ticket:
    """A place in one context's queue: `async with ticket:` waits for the earlier ones, and leaving (or
    `release()`, for a request that never got to wait) hands the turn to the next."""

    def __init__(self, queues: ContextQueues, key, first: bool):
        self.queues = queues
        self.key = key
        self._turn = first
        self._waiter: asyncio.Future | None = None
        self._released = False

    def _wake(self) -> None:
        self._turn = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def __aenter__(self) -> "Ticket":
        if not self._turn:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            except BaseException:  # cancelled while waiting: give up the place (and the turn, if it came)
                self.release()
                raise
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Leave the queue; safe to call more than once."""
        if not self._released:
            self._released = True
            self.queues._leave(self)
