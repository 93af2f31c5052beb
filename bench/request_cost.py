"""Server CPU per request of the cheapest routes: the floor under every rating.

Starts a private PostgreSQL (or takes --database-url), seeds raters like
bench/load.py, starts `tuneloop serve --workers 1`, and lets N keep-alive clients
call one route as fast as it answers, for --duration seconds after a warm-up:

    GET /healthz           no authentication, no database: the framework and middleware
    GET /api/v1/items/next with a bearer token: token lookup, session, and (after the
                           first call) the lease the rater already holds

Printed: requests per second and the server's CPU milliseconds per request.

    .venv/bin/python bench/request_cost.py [--clients 8] [--duration 8]
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import RawConnection, cpu_seconds, is_local, seed, serving  # noqa: E402

ROUTES = {"healthz": "/healthz", "items/next (held lease)": "/api/v1/items/next"}


async def hammer(port: int, tokens: list[str], path: str, seconds: float) -> list[int]:
    statuses: list[int] = []
    until = time.perf_counter() + seconds

    async def client(token: str) -> None:
        connection = RawConnection(port, token)
        while time.perf_counter() < until:
            statuses.append((await connection.request("GET", path))[0])
        connection.close()

    await asyncio.gather(*(client(token) for token in tokens))
    return statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--database-url", help="a local PostgreSQL to use (its tables are emptied)")
    args = parser.parse_args()

    if args.database_url and not is_local(args.database_url):
        parser.error("--database-url must name a local server")
    with serving(args.database_url, workers=1) as (database_url, server):
        tokens = list(seed(database_url, args.clients, 100, 3).values())
        print(f"{args.clients} clients, {args.duration:.0f} s per route, load average "
              f"{os.getloadavg()[0]:.2f}")
        for name, path in ROUTES.items():
            asyncio.run(hammer(server.port, tokens, path, 2.0))  # warm-up
            cpu, started = cpu_seconds([server.process.pid]), time.perf_counter()
            statuses = asyncio.run(hammer(server.port, tokens, path, args.duration))
            cpu, wall = cpu_seconds([server.process.pid]) - cpu, time.perf_counter() - started
            print(f"{name:<26} {len(statuses) / wall:7.0f} requests/s   server CPU "
                  f"{cpu / len(statuses) * 1000:5.2f} ms per request   statuses {sorted(set(statuses))}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
