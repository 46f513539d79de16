"""Cost of the poll step's strategy seams (paginator + auth flow) per poll.

Sends ``--polls`` requests to a local aiohttp server twice, interleaved in rounds: once with
:func:`fetch` on the already-authenticated request (the baseline: what a poll was before
the seams), once through :meth:`PollStep.pages` (``SinglePage`` + ``StaticHeaders``).
Prints both per-poll times and their ratio (target <= 1.05: the seams cost under 5 %).

Run: ``.venv/bin/python benchmarks/poll_step.py [--polls N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from contextlib import aclosing

from aiohttp import web

from arroyo_lite.connectors.polling_http.http import fetch, shared_session
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.polling_http.poll import poll_step


async def main(polls: int, rounds: int) -> None:
    app = web.Application()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b'{"n": 1}', content_type="application/json")

    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    options = PollingHttpOptions(
        endpoint=f"http://127.0.0.1:{port}/", headers=(("Authorization", "Bearer {{ T }}"),)
    )
    step = poll_step(options, {"T": "token"})
    authed = step.first_request()
    base = seams = 0.0
    async with shared_session() as session:
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(polls // rounds):
                await fetch(session, authed)
            base += time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(polls // rounds):
                async with aclosing(step.pages(session)) as pages:
                    async for _response in pages:
                        pass
            seams += time.perf_counter() - started
    await runner.cleanup()
    per = polls // rounds * rounds
    print(f"fetch only        {base / per * 1e6:8.1f} us/poll")
    print(f"through PollStep  {seams / per * 1e6:8.1f} us/poll")
    ratio = seams / base
    print(f"ratio {ratio:.3f} (target <= 1.05) {'PASS' if ratio <= 1.05 else 'FAIL'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--polls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.polls, args.rounds))
