"""Instructions the server executes per rating: a count that other jobs on the machine do not move.

Starts the stack as bench/load.py does (a private PostgreSQL, `tuneloop serve --workers 1`
under `valgrind --tool=callgrind` with collection off), lets --raters closed-loop raters
rate, switches collection on (`callgrind_control -i on`) for --ratings acknowledged
ratings after a warm-up, and prints instructions / ratings. User space only: the kernel's
part (sockets, thread wake-ups) and waits on the interpreter lock are not in it, since
valgrind runs one thread at a time; CPU seconds (bench/load.py) show those.

    .venv/bin/python bench/instructions_per_rating.py [--flow one-request] [--ratings 200]

To compare with another version, run the same file in a checkout of that version.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import Results, rater, seed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=200, help="counted ratings")
    parser.add_argument("--raters", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=60, help="ratings before counting")
    parser.add_argument("--flow", choices=["two-requests", "one-request"], default="two-requests")
    args = parser.parse_args()

    from app.migrate import upgrade
    from tests.services import PostgresServer, free_port

    postgres = PostgresServer.start()
    out = Path(tempfile.mkdtemp(prefix="tuneloop-callgrind-"))
    server = None
    try:
        upgrade(postgres.url)
        tokens = seed(postgres.url, args.raters, 20 * (args.warmup + args.ratings), 3)
        port = free_port()
        env = dict(os.environ) | {"TUNELOOP_DATABASE_URL": postgres.url, "TUNELOOP_ENV": "development",
                                  "TUNELOOP_API_RATE_PER_MINUTE": "100000000", "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/callgrind.out",
             sys.executable, "-m", "app.cli", "serve", "--workers", "1", "--port", str(port),
             "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=open(out / "server.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)

        async def rate() -> tuple[int, Results]:
            results = Results()
            forever = time.monotonic() + 1e6
            raters = [asyncio.ensure_future(rater(name, token, port, 0, forever, results, flow=args.flow))
                      for name, token in tokens.items()]
            while len(results.acks) < args.warmup:
                await asyncio.sleep(0.1)
            subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True)
            start = len(results.acks)
            while len(results.acks) < start + args.ratings:
                await asyncio.sleep(0.05)
            subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], check=True, capture_output=True)
            counted = len(results.acks) - start
            for one in raters:
                one.cancel()
            await asyncio.gather(*raters, return_exceptions=True)
            return counted, results

        counted, results = asyncio.run(rate())
        server.terminate()
        server.wait(120)
        server = None
        totals = [int(line.split()[1]) for line in (out / "callgrind.out").read_text().splitlines()
                  if line.startswith("totals:")]
    finally:
        if server is not None:
            server.kill()
        postgres.destroy()
    print(f"{args.flow}, {args.raters} raters, one server process: {counted} ratings, "
          f"{totals[0] / 1e6:.0f} M instructions, {totals[0] / counted / 1e6:.2f} M per rating; "
          f"errors {dict(results.errors) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
