"""Per-context order in serve: places are taken on arrival, kept whatever order the tasks start in, and
contexts do not wait for each other; nothing is kept for idle contexts."""

import asyncio

from oaicli.envelope.http.queues import ContextQueues


def run(coroutine):
    """The bound only turns a broken queue (a turn never handed on) into a failure instead of a hung suite."""
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def _answer(ticket, name, order, gate=None):
    async with ticket:
        order.append(f"{name} starts")
        if gate is not None:
            await gate.wait()
        order.append(f"{name} ends")


def test_the_order_of_arrival_holds_even_when_tasks_start_in_reverse():
    async def scenario():
        queues, order = ContextQueues(), []
        tickets = [queues.join("ctx") for _ in range(5)]  # arrival order: 0..4
        tasks = [asyncio.ensure_future(_answer(t, str(i), order)) for i, t in reversed(list(enumerate(tickets)))]
        await asyncio.gather(*tasks)
        return order, len(queues)

    order, left = run(scenario())
    assert order == [f"{i} {what}" for i in range(5) for what in ("starts", "ends")]
    assert left == 0


def test_one_busy_context_does_not_hold_up_another():
    async def scenario():
        queues, order, gate = ContextQueues(), [], asyncio.Event()
        slow = asyncio.ensure_future(_answer(queues.join("a"), "a1", order, gate))
        queued = asyncio.ensure_future(_answer(queues.join("a"), "a2", order))
        await asyncio.sleep(0)  # a1 holds its turn, a2 waits behind it
        await _answer(queues.join("b"), "b1", order)  # runs to the end while a1 is held open
        during = list(order)
        gate.set()
        await asyncio.gather(slow, queued)
        return during, order

    during, order = run(scenario())
    assert during == ["a1 starts", "b1 starts", "b1 ends"]
    assert order[-3:] == ["a1 ends", "a2 starts", "a2 ends"]


def test_a_request_cancelled_while_waiting_gives_up_its_place():
    async def scenario():
        queues, order, gate = ContextQueues(), [], asyncio.Event()
        first = asyncio.ensure_future(_answer(queues.join("ctx"), "1", order, gate))
        gone = asyncio.ensure_future(_answer(queues.join("ctx"), "2", order))
        third = asyncio.ensure_future(_answer(queues.join("ctx"), "3", order))
        await asyncio.sleep(0)  # every task is now waiting for its turn
        gone.cancel()
        gate.set()
        await asyncio.gather(first, third, gone, return_exceptions=True)
        return order, len(queues)

    order, left = run(scenario())
    assert order == ["1 starts", "1 ends", "3 starts", "3 ends"]
    assert left == 0


def test_a_ticket_released_without_waiting_passes_the_turn_on():
    async def scenario():
        queues, order = ContextQueues(), []
        never_started = queues.join("ctx")
        later = asyncio.ensure_future(_answer(queues.join("ctx"), "later", order))
        await asyncio.sleep(0)
        assert order == []  # still behind the first place
        never_started.release()
        never_started.release()  # a second release changes nothing
        await later
        return order, len(queues)

    order, left = run(scenario())
    assert order == ["later starts", "later ends"]
    assert left == 0


def test_idle_contexts_leave_nothing_behind():
    async def scenario():
        queues = ContextQueues()
        for number in range(1000):
            async with queues.join(("group", f"user-{number}")):
                pass
        return len(queues), queues._queues

    assert run(scenario()) == (0, {})
