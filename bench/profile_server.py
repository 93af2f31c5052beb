"""Where a rating's server CPU goes: one server process sampled under load, by layer.

Starts the stack as bench/load.py does (a private PostgreSQL, `tuneloop serve --workers 1`),
counts the SQL statements of one lease and one submit in PostgreSQL's statement log, then
lets --raters closed-loop raters lease and submit for --duration seconds while
`py-spy record --gil` samples the server. --gil keeps only the thread holding the
interpreter lock: time spent computing, not waiting for PostgreSQL or a client. Each
sample goes to the innermost frame that names a layer (LAYERS, first match wins), and
each layer's share of the samples times the server's user CPU per rating is its
milliseconds per rating; the kernel's part (system CPU: sockets, thread wake-ups) is
not sampled and is given apart.

    .venv/bin/pip install py-spy          # a profiler, not a project dependency
    .venv/bin/python bench/profile_server.py [--raters 8] [--duration 20]

To compare with another version, run the same file in a checkout of that version
(bench/load.py beside it). py-spy needs ptrace rights over the server (root, or
kernel.yama.ptrace_scope 0).
"""

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import Results, rater, seed  # noqa: E402

# (layer, pattern over a frame "function (path:line)"), innermost frame first.
LAYERS = [
    ("logging (uvicorn's access log)", r"logging/"),
    ("JSON and pydantic (request body, response)", r"pydantic|fastapi/encoders|json/|serialize_response"),
    ("psycopg (driver)", r"psycopg"),
    ("SQLAlchemy pool (checkout, socket check)", r"sqlalchemy/pool|_refuse_closed_connection"),
    ("SQLAlchemy ORM (session)", r"sqlalchemy/orm"),
    ("SQLAlchemy Core (statement cache, execute, rows)", r"sqlalchemy/"),
    ("token hash and rate limit", r"app/users/service|app/api/limits|app/ratelimit"),
    ("Prometheus request timer", r"prometheus_client|app/monitoring"),
    ("lease and submit logic (app/feedback)", r"app/feedback|app/models"),
    ("thread hops (anyio thread pool)", r"anyio|concurrent/futures|threading|queue\.py"),
    ("our middleware (app/middleware.py)", r"app/middleware"),
    ("FastAPI and Starlette (routing, dependencies)", r"fastapi/|starlette/|app/deps|app/main|app/api"),
    ("uvicorn, httptools, event loop", r"uvicorn|httptools|asyncio|uvloop|selectors"),
]


def layer_of(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for name, pattern in LAYERS:
            if re.search(pattern, frame):
                return name
    return "other"


def statements_per_request(database_url: str, data_dir: Path, port: int, token: str) -> dict[str, list[str]]:
    """The SQL PostgreSQL received for one lease and one submit (log_statement = all, briefly)."""
    from sqlalchemy import create_engine

    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    log = data_dir / "log"
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
    for n in range(6):  # past psycopg's prepare threshold, as on a busy server
        item = client.get("/api/v1/items/next").json()["item_id"]
        client.post("/api/v1/ratings", json={"item_id": item, "verdict": "tie"}, headers={"Idempotency-Key": f"p{n}"})
    with engine.connect() as connection:
        connection.exec_driver_sql("ALTER SYSTEM SET log_statement = 'all'")
        connection.exec_driver_sql("SELECT pg_reload_conf()")
    time.sleep(1)
    marks = [log.stat().st_size]
    item = client.get("/api/v1/items/next").json()["item_id"]
    time.sleep(0.5)
    marks.append(log.stat().st_size)
    client.post("/api/v1/ratings", json={"item_id": item, "verdict": "tie"}, headers={"Idempotency-Key": "p-last"})
    time.sleep(0.5)
    with engine.connect() as connection:
        connection.exec_driver_sql("ALTER SYSTEM RESET log_statement")
        connection.exec_driver_sql("SELECT pg_reload_conf()")
    engine.dispose()
    text = log.read_bytes()
    found = {}
    for name, part in (("lease", text[marks[0]:marks[1]]), ("submit", text[marks[1]:])):
        lines = part.decode(errors="replace").splitlines()
        found[name] = [line.split("LOG:", 1)[-1].strip()[:90] for line in lines  # ours, not ALTER SYSTEM's
                       if re.search(r"LOG:\s+(statement|execute)", line) and not re.search("SYSTEM|reload", line)]
    return found


def user_and_system_seconds(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raters", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0, help="sampled seconds")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"))
    args = parser.parse_args()
    if not Path(args.py_spy).exists():
        parser.error("py-spy not found: .venv/bin/pip install py-spy, or give --py-spy PATH")

    from app.migrate import upgrade
    from tests.reliability.harness import WebServer, integrity_problems
    from tests.services import PostgresServer

    postgres = PostgresServer.start()
    server = None
    try:
        upgrade(postgres.url)
        tokens = seed(postgres.url, args.raters, max(2000, int(600 * (args.warmup + args.duration))), 3)
        env = dict(os.environ) | {"TUNELOOP_DATABASE_URL": postgres.url, "TUNELOOP_ENV": "development",
                                  "TUNELOOP_API_RATE_PER_MINUTE": "100000000"}
        server = WebServer(env=env, log_path=Path(tempfile.mkdtemp(prefix="tuneloop-profile-")) / "server.log",
                           workers=1).start()
        statements = statements_per_request(postgres.url, postgres.data_dir, server.port, next(iter(tokens.values())))

        results = Results()
        samples = Path(tempfile.mkdtemp(prefix="tuneloop-profile-")) / "samples.txt"

        async def load() -> tuple[tuple[float, float], tuple[float, float], int]:
            now = time.monotonic()
            measure_from, until = now + args.warmup, now + args.warmup + args.duration
            raters = [asyncio.ensure_future(rater(name, token, server.port, measure_from, until, results))
                      for name, token in tokens.items()]
            await asyncio.sleep(args.warmup)
            before, acked = user_and_system_seconds(server.process.pid), len(results.acks)
            spy = await asyncio.create_subprocess_exec(
                args.py_spy, "record", "--gil", "--nonblocking", "-r", "200", "-d", str(int(args.duration)),
                "-f", "raw", "-o", str(samples), "-p", str(server.process.pid),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(args.duration)
            after, acked = user_and_system_seconds(server.process.pid), len(results.acks) - acked
            await asyncio.gather(*raters)
            await spy.wait()
            return before, after, acked

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            before, after, ratings = runner.run(load())
        problems = integrity_problems(postgres.url, results.acks)
    finally:
        if server:
            server.stop()
        postgres.destroy()

    user, system = ((a - b) * 1000 / max(ratings, 1) for a, b in zip(after, before))
    layers, total = Counter(), 0
    for line in samples.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        layers[layer_of(stack)] += int(count)
        total += int(count)
    print(f"{args.raters} raters, lease -> submit, one server process; {ratings} ratings in {args.duration:g} s "
          f"({ratings / args.duration:.0f}/s); integrity {'OK' if not problems else problems[:3]}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"server CPU per rating: {user + system:.2f} ms ({user:.2f} user, {system:.2f} system); "
          f"{total} samples holding the GIL\n")
    print("| where | share of sampled | ms per rating |\n|---|---:|---:|")
    for name, count in layers.most_common():
        print(f"| {name} | {100 * count / max(total, 1):.0f} % | {user * count / max(total, 1):.2f} |")
    print(f"| kernel (system CPU: sockets, thread wake-ups, epoll) | — | {system:.2f} |")
    for name, lines in statements.items():
        print(f"\nSQL statements in one {name} ({len(lines)} round trips):")
        for line in lines:
            print(f"    {line}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
