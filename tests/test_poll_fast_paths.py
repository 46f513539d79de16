"""The poll's fast paths (issue 16 item 1) keep the behaviour of the slow ones.

* :class:`~arroyo_lite.connectors.polling_http.scheduling.PollSlots`: FIFO admission with a
  synchronous fast path; a waiter that is cancelled never loses or leaks a slot.
* The rate gate's shortcuts: :func:`~.ratelimit.says_budget` sees every header
  :func:`~.ratelimit.read_budget` reads (in any letter case, as servers send them), and
  :meth:`~.ratelimit.RateGate.holds` is true exactly when :meth:`~.ratelimit.RateGate.before`
  may wait.
* :meth:`~.poll.PollStep.responses` (one page without the async generator) gives what
  :meth:`~.poll.PollStep.pages` yields, and counts the same pages.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from arroyo_lite.clock import ManualClock
from arroyo_lite.connectors.polling_http.client import shared_session
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.polling_http.poll import PollReport, poll_step
from arroyo_lite.connectors.polling_http.ratelimit import (
    HostPace,
    RateGate,
    read_budget,
    says_budget,
)
from arroyo_lite.connectors.polling_http.scheduling import PollSlots

pytestmark = pytest.mark.timeout(60)


async def test_slots_admit_in_arrival_order_and_never_jump_the_queue() -> None:
    slots = PollSlots(1, asyncio.get_running_loop())
    assert slots.try_take()
    admitted: list[int] = []

    async def poll(i: int) -> None:
        await slots.take()
        admitted.append(i)

    waiting = [asyncio.create_task(poll(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert admitted == []
    slots.release()  # handed to the first waiter
    assert not slots.try_take(), "a newcomer took the slot a waiter was handed"
    await asyncio.sleep(0)
    assert admitted == [0]
    slots.release()
    slots.release()
    await asyncio.gather(*waiting)
    assert admitted == [0, 1, 2]
    slots.release()
    assert slots.try_take() and not slots.try_take()


async def test_a_cancelled_waiter_neither_loses_nor_leaks_a_slot() -> None:
    slots = PollSlots(1, asyncio.get_running_loop())
    assert slots.try_take()
    gone = asyncio.create_task(slots.take())
    handed = asyncio.create_task(slots.take())
    last = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    gone.cancel()  # cancelled while it waits: it leaves the queue
    await asyncio.gather(gone, return_exceptions=True)
    slots.release()  # to ``handed``, which is then cancelled before it runs
    handed.cancel()
    await asyncio.gather(handed, return_exceptions=True)
    await asyncio.wait_for(last, 5)  # ``handed`` passed its slot on
    assert not slots.try_take()
    slots.release()
    assert slots.try_take()


async def test_slots_as_a_context_manager() -> None:
    slots = PollSlots(2, asyncio.get_running_loop())
    async with slots:
        async with slots:
            assert not slots.try_take()
        assert slots.try_take()
        slots.release()
    assert slots.try_take() and slots.try_take() and not slots.try_take()


SPENT = [
    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"},
    {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"},
    {"RateLimit-Remaining": "0", "RateLimit-Reset": "30"},
    {"ratelimit": '"default";r=0;t=30'},
    {"RateLimit": "limit=100, remaining=0, reset=30"},
]


@pytest.mark.parametrize("sent", SPENT)
def test_every_budget_header_is_seen_in_any_case(sent: dict[str, str]) -> None:
    headers = CIMultiDictProxy(CIMultiDict(sent))
    assert says_budget(headers)
    assert read_budget(headers, now_wall=1_700_000_000.0) is not None


def test_answers_without_budget_headers_are_not_read() -> None:
    plain = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json", "X-Other": "0"}))
    assert not says_budget(plain) and read_budget(plain, now_wall=0.0) is None
    gate = RateGate(ManualClock())
    assert gate.observe(plain) is None and gate.blocked_until_ns is None


@pytest.mark.parametrize("sent", SPENT)
async def test_the_gate_holds_exactly_when_it_would_wait(sent: dict[str, str]) -> None:
    clock = ManualClock()
    options = PollingHttpOptions(endpoint="http://127.0.0.1:9/api")
    request = poll_step(options, {}).first_request()
    gate = RateGate(clock)
    assert not gate.holds(request)
    gate.observe(CIMultiDictProxy(CIMultiDict(sent)))
    assert gate.holds(request) and gate.delay_s() == pytest.approx(30.0)
    await clock.advance(30.0)
    assert gate.delay_s() == 0.0 and not gate.holds(request)


def test_a_paced_gate_holds_its_host_only() -> None:
    paced = poll_step(PollingHttpOptions(endpoint="http://127.0.0.1:9/a"), {}).first_request()
    other = poll_step(PollingHttpOptions(endpoint="http://127.0.0.2:9/a"), {}).first_request()
    gate = RateGate(ManualClock(), pace=HostPace(10.0), paced_origin=paced.url)
    assert gate.holds(paced) and not gate.holds(other)


async def test_responses_of_one_page_are_what_pages_yields(server: Any) -> None:
    options = PollingHttpOptions(endpoint=str(server.make_url("/counter")))
    step = poll_step(options, {})
    async with shared_session() as session:
        slow, fast = PollReport(), PollReport()
        pages = [r async for r in step.pages(session, report=slow)]
        responses = await step.responses(session, report=fast)
        lean = PollReport(detailed=False)
        await step.responses(session, report=lean)
    assert [r.status for r in pages] == [r.status for r in responses] == [200]
    assert (slow.pages, slow.page_lines, len(slow.lines)) == (1, [0], 1)
    assert (fast.pages, fast.page_lines, len(fast.lines)) == (1, [0], 1)
    assert fast.lines[0].startswith("GET ") and " -> 200 " in fast.lines[0]
    assert (lean.pages, lean.lines, lean.page_lines) == (1, [], [])
