"""Load: N simulated raters hammering lease → submit over HTTP, then an integrity check.

Starts its own private PostgreSQL (or takes --database-url), migrates it, starts
`tuneloop serve` (one process per core, or --workers W) on 127.0.0.1, and for each rater count: empties the
tables, creates the raters (API tokens) and enough comparison items (each needing
--overlap answers), and lets every rater loop

    GET  /api/v1/items/next                      (lease)
    POST /api/v1/ratings  + Idempotency-Key      (submit: verdict "tie")

(--flow two-requests, the default; --flow one-request answers with
POST /api/v1/ratings?lease_next=true, which also leases the next item; --flow
batch leases --batch items with POST /api/v1/items/leases and answers them with
POST /api/v1/ratings/bulk) as fast as the server answers, for --duration seconds after a --warmup. Printed:
ratings accepted per second, p50/p95/p99 latency of lease and of submit, errors
by kind, the CPU seconds spent by the server, PostgreSQL and this load generator,
and the integrity check read back from the database: every acknowledged rating
stored, no rater answering an item twice, no item over its overlap.

With --think-time T the raters are people instead: each answers once every T seconds
on average, at times drawn in advance as a Poisson process (open loop: a slow server
builds a backlog, it does not slow the offer), and leases its next item as soon as an
answer is acknowledged. Printed then: ratings/s offered and served, and a submit's
latency counted from the moment its answer was due.

    .venv/bin/python bench/load.py                           # 1, 8, 32, 128 raters
    .venv/bin/python bench/load.py --raters 1000 --think-time 5 --warmup 10 --duration 30
    .venv/bin/python bench/load.py --raters 32 --duration 30 --workers 2
    .venv/bin/python bench/load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Loopback only: the server listens on 127.0.0.1 and the raters connect nowhere
else; --database-url must name a local server too (its tables are emptied).
The per-token API rate limit is lifted for the run (one simulated rater asks far
faster than a person; the limit has its own test). The default client is a
minimal HTTP/1.1 keep-alive client on asyncio streams, so the load generator
stays a small share of the CPU; --client httpx uses httpx.AsyncClient instead.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOOPBACK = {"127.0.0.1", "localhost", "::1", ""}


# --- a small HTTP/1.1 client: one keep-alive connection per rater --------------------------


class RawConnection:
    def __init__(self, port: int, token: str):
        self.port = port
        self.auth = f"Authorization: Bearer {token}\r\nHost: 127.0.0.1\r\n".encode()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: str = "") -> tuple[int, bytes]:
        if self.reader is not None and self.reader.at_eof():
            # The server closed it while idle (its keep-alive timeout): reconnect, as browsers do.
            self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"{method} {path} HTTP/1.1\r\n{headers}".encode() + self.auth
        if body:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.writer.write(head + b"\r\n" + body)
        try:
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionResetError("closed by the server")
            status = int(status_line.split(b" ", 2)[1])
            length, close = 0, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
                elif name == b"transfer-encoding":
                    raise RuntimeError("chunked responses are not expected here")
            payload = await self.reader.readexactly(length) if length else b""
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class HttpxConnection:
    def __init__(self, port: int, token: str):
        import httpx

        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                        headers={"Authorization": f"Bearer {token}"})

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: str = "") -> tuple[int, bytes]:
        extra = dict(line.split(": ", 1) for line in headers.strip().split("\r\n") if line)
        if body:
            extra["Content-Type"] = "application/json"
        response = await self.client.request(method, path, content=body or None, headers=extra)
        return response.status_code, response.content

    def close(self) -> None:
        pass


# --- the raters ---------------------------------------------------------------------------


@dataclass
class Results:
    lease_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    accepted: int = 0  # 201s inside the measured window
    offered: int = 0  # --think-time: answers due inside the measured window
    errors: Counter = field(default_factory=Counter)
    acks: list = field(default_factory=list)  # every 2xx answer, warm-up included


async def submit(connection, results: Results, path: str, payload: bytes, headers: str = "") -> tuple[int, bytes]:
    """POST answers until the server answers: one whose reply was lost is sent again, and its
    idempotency keys (the header's, or each row's in a bulk upload) make the retry a replay."""
    while True:
        try:
            return await connection.request("POST", path, payload, headers=headers)
        except (OSError, asyncio.IncompleteReadError) as error:
            results.errors[f"submit {error.__class__.__name__}"] += 1
            await asyncio.sleep(0.05)


async def rater(name: str, token: str, port: int, measure_from: float, until: float, results: Results,
                *, client: str = "raw", flow: str = "two-requests", batch: int = 20) -> None:
    """Lease → submit until `until`. With --flow one-request the submit also leases the next
    item (POST /ratings?lease_next=true), and a separate lease is only made when it ran dry;
    with --flow batch, `batch` items are leased (POST /items/leases) and answered
    (POST /ratings/bulk) per request pair."""
    from tests.reliability.harness import Ack

    if flow == "batch":
        return await batch_rater(name, token, port, measure_from, until, results, client, batch)
    one_request = flow == "one-request"
    submit_path = "/api/v1/ratings?lease_next=true" if one_request else "/api/v1/ratings"
    connection = (RawConnection if client == "raw" else HttpxConnection)(port, token)
    item_id = None
    try:
        while time.monotonic() < until:
            started = time.monotonic()
            if item_id is None:
                try:
                    status, body = await connection.request("GET", "/api/v1/items/next")
                except (OSError, asyncio.IncompleteReadError) as error:
                    results.errors[f"lease {error.__class__.__name__}"] += 1
                    await asyncio.sleep(0.05)
                    continue
                if status != 200:
                    results.errors[f"lease {status}"] += 1
                    await asyncio.sleep(0.05)
                    continue
                item_id = json.loads(body)["item_id"]
                if started >= measure_from:
                    results.lease_ms.append((time.monotonic() - started) * 1000)
            submitted = time.monotonic()
            key = f"{name}-item-{item_id}"
            payload = b'{"item_id": %d, "verdict": "tie"}' % item_id
            status, body = await submit(connection, results, submit_path, payload, f"Idempotency-Key: {key}\r\n")
            done = time.monotonic()
            answered, item_id = item_id, None
            if status in (200, 201):
                reply = json.loads(body)
                results.acks.append(Ack(name, answered, key, reply["id"], status))
                if one_request and reply.get("next_item"):
                    item_id = reply["next_item"]["item_id"]
            else:
                results.errors[f"submit {status}"] += 1
            if submitted >= measure_from:
                results.submit_ms.append((done - submitted) * 1000)
                results.accepted += status == 201
    finally:
        connection.close()


async def paced_rater(name: str, token: str, port: int, answers_due: list[float], opens_at: float,
                      measure_from: float, until: float, results: Results) -> None:
    """A person: opens the page at `opens_at` (a lease), answers at the times in `answers_due`
    and leases the next item after each answer.

    Open loop: the answer times were drawn up front, whatever the server does, so a slow
    server makes answers wait for the rater's connection (a backlog) instead of slowing the
    offer. A submit's latency counts from the moment its answer was due, that wait included;
    a lease's from when it was sent, which is as soon as the answer before it was acknowledged."""
    from tests.reliability.harness import Ack

    connection = RawConnection(port, token)
    await asyncio.sleep(max(0.0, opens_at - time.monotonic()))
    try:
        for due in answers_due:
            if time.monotonic() >= until:
                break
            while True:  # the item to answer next; a failed lease is asked again
                started = time.monotonic()
                try:
                    status, body = await connection.request("GET", "/api/v1/items/next")
                except (OSError, asyncio.IncompleteReadError) as error:
                    status, body = error.__class__.__name__, b""
                if started >= measure_from:
                    results.lease_ms.append((time.monotonic() - started) * 1000)
                if status == 200:
                    break
                results.errors[f"lease {status}"] += 1
                if time.monotonic() >= until:
                    return
                await asyncio.sleep(0.05)
            item_id = json.loads(body)["item_id"]
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            key = f"{name}-item-{item_id}"
            payload = b'{"item_id": %d, "verdict": "tie"}' % item_id
            status, body = await submit(connection, results, "/api/v1/ratings", payload,
                                        f"Idempotency-Key: {key}\r\n")
            done = time.monotonic()
            if status in (200, 201):
                results.acks.append(Ack(name, item_id, key, json.loads(body)["id"], status))
            else:
                results.errors[f"submit {status}"] += 1
            if due >= measure_from:
                results.submit_ms.append((done - due) * 1000)
            results.accepted += status == 201 and measure_from <= done <= until
    finally:
        connection.close()


def poisson_schedule(rng: random.Random, think: float, start: float, until: float) -> list[float]:
    """Times from `start` to `until` with exponential gaps of mean `think`: a Poisson process."""
    times, at = [], start
    while (at := at + rng.expovariate(1 / think)) < until:
        times.append(at)
    return times


async def batch_rater(name: str, token: str, port: int, measure_from: float, until: float, results: Results,
                      client: str, batch: int) -> None:
    from tests.reliability.harness import Ack

    connection = (RawConnection if client == "raw" else HttpxConnection)(port, token)
    try:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                status, body = await connection.request("POST", "/api/v1/items/leases", b'{"count": %d}' % batch)
            except (OSError, asyncio.IncompleteReadError) as error:
                results.errors[f"lease {error.__class__.__name__}"] += 1
                await asyncio.sleep(0.05)
                continue
            items = [item["item_id"] for item in json.loads(body)["items"]] if status == 200 else []
            if not items:
                results.errors[f"lease {status}" if status != 200 else "lease empty"] += 1
                await asyncio.sleep(0.05)
                continue
            leased = time.monotonic()
            keys = [f"{name}-item-{item_id}" for item_id in items]
            payload = json.dumps({"ratings": [{"item_id": item_id, "verdict": "tie", "idempotency_key": key}
                                              for item_id, key in zip(items, keys)]}).encode()
            status, body = await submit(connection, results, "/api/v1/ratings/bulk", payload)
            done = time.monotonic()
            if status in (200, 201):
                reply = json.loads(body)
                for item_id, key, rating in zip(items, keys, reply["ratings"]):
                    results.acks.append(Ack(name, item_id, key, rating["id"], status))
            else:
                results.errors[f"submit {status}"] += 1
            if started >= measure_from:
                results.lease_ms.append((leased - started) * 1000)
                results.submit_ms.append((done - leased) * 1000)
                results.accepted += reply["created"] if status in (200, 201) else 0
    finally:
        connection.close()


# --- CPU accounting from /proc ----------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used)."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw.rsplit(")", 1)[1].split()
        # utime + stime, and cutime + cstime: children that exited (a PostgreSQL
        # backend whose connection closed) were reaped into their parent's count.
        table[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / ticks)
    return table


def cpu_seconds(root_pids: list[int]) -> float:
    """CPU time of these processes and all their descendants (those still alive)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0.0, [p for p in root_pids if p in table]
    while stack:
        pid = stack.pop()
        total += table[pid][1]
        stack.extend(children.get(pid, []))
    return total


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


# --- setup --------------------------------------------------------------------------------


def seed(database_url: str, raters: int, items: int, overlap: int) -> dict[str, str]:
    """Empty the tables; `raters` users with API tokens; `items` pairs needing `overlap` answers."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from app.models import Item, ItemKind, ItemPurpose, ItemResponse, Prompt, Sample
    from app.users.service import create_token, create_user
    from tests.conftest import truncate_all

    engine = create_engine(database_url)
    with Session(engine) as db:
        truncate_all(db)
        tokens = {f"load-{n}": create_token(db, create_user(db, f"load-{n}")) for n in range(raters)}
        prompts = [Prompt(text=f"Load prompt {i}: say something useful.", source="load", tags=[])
                   for i in range(items)]
        db.add_all(prompts)
        db.flush()
        samples = [Sample(prompt_id=p.id, text=f"Answer {side} to prompt {p.id}.", generation={})
                   for p in prompts for side in "AB"]
        db.add_all(samples)
        db.flush()
        db.add_all(Item(kind=ItemKind.compare, purpose=ItemPurpose.train, prompt_id=p.id, overlap=overlap,
                        responses=[ItemResponse(position=0, sample_id=samples[2 * i].id),
                                   ItemResponse(position=1, sample_id=samples[2 * i + 1].id)])
                   for i, p in enumerate(prompts))
        db.commit()
    # Fresh statistics, as autovacuum would have them on a live database: planned on
    # the stale ones of a just-emptied table, the lease query can go badly wrong.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return tokens


def postmaster_pid(database_url: str) -> int | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            data_dir = connection.execute(text("SHOW data_directory")).scalar()
        return int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # another user's server: its CPU is not counted
    finally:
        engine.dispose()


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_level(args, raters: int, database_url: str, server, pg_pid: int | None) -> dict:
    from tests.reliability.harness import integrity_problems

    # Enough items that nobody runs dry: at a generous 1500 ratings/s, or half again the offered rate.
    rate = 1.5 * raters / args.think_time if args.think_time else 1500
    items = args.items or max(200, int(rate * (args.warmup + args.duration) / args.overlap) + raters)
    tokens = seed(database_url, raters, items, args.overlap)
    results = Results()
    load_before = os.getloadavg()[0]
    cpu_before = (cpu_seconds([server.process.pid]), cpu_seconds([pg_pid]) if pg_pid else 0.0, own_cpu())

    async def main() -> None:
        now = time.monotonic()
        measure_from, until = now + args.warmup, now + args.warmup + args.duration
        if args.think_time:
            rng = random.Random(args.seed)
            people = []
            for name, token in tokens.items():
                # The pages open spread over the warm-up, not all in one instant.
                opens_at = now + rng.uniform(0, args.warmup)
                answers_due = poisson_schedule(rng, args.think_time, opens_at, until)
                results.offered += sum(measure_from <= due for due in answers_due)
                people.append(paced_rater(name, token, server.port, answers_due, opens_at, measure_from, until,
                                          results))
            await asyncio.gather(*people)
        else:
            await asyncio.gather(*(rater(name, token, server.port, measure_from, until, results,
                                          client=args.client, flow=args.flow, batch=args.batch)
                                   for name, token in tokens.items()))

    # uvloop: a thousand raters' connections cost the load generator less CPU than on asyncio's own loop.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    cpu_after = (cpu_seconds([server.process.pid]), cpu_seconds([pg_pid]) if pg_pid else 0.0, own_cpu())
    spent = [after - before for before, after in zip(cpu_before, cpu_after)]
    wall = args.warmup + args.duration
    problems = integrity_problems(database_url, results.acks)
    acked = max(len(results.acks), 1)
    return {
        "raters": raters, "items": items, "flow": args.flow, "think_time": args.think_time,
        "offered_per_s": results.offered / args.duration if args.think_time else None,
        "ratings_per_s": results.accepted / args.duration,
        "lease": [percentile(results.lease_ms, q) for q in (0.5, 0.95, 0.99)],
        "submit": [percentile(results.submit_ms, q) for q in (0.5, 0.95, 0.99)],
        "errors": dict(results.errors), "acks": len(results.acks),
        "integrity": problems,
        "cpu": {"server": spent[0] / wall, "postgres": spent[1] / wall, "load generator": spent[2] / wall},
        # CPU per acknowledged rating (lease + submit): comparable however busy the machine is.
        "cpu_ms_per_rating": {"server": 1000 * spent[0] / acked, "postgres": 1000 * spent[1] / acked,
                              "load generator": 1000 * spent[2] / acked},
        "load_average": (load_before, os.getloadavg()[0]),
        "lease_mean": statistics.fmean(results.lease_ms) if results.lease_ms else float("nan"),
    }


def print_level(row: dict) -> None:
    lease, submit = row["lease"], row["submit"]
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(row["errors"].items())) or "none"
    integrity = "OK" if not row["integrity"] else f"{len(row['integrity'])} PROBLEMS: {row['integrity'][:5]}"
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in row["cpu"].items())
    offered = f"offered {row['offered_per_s']:.1f}, served " if row["think_time"] else ""
    print(f"raters {row['raters']:>4}: {offered}{row['ratings_per_s']:7.1f} ratings/s   "
          f"lease p50/p95/p99 {lease[0]:.1f}/{lease[1]:.1f}/{lease[2]:.1f} ms   "
          f"submit p50/p95/p99 {submit[0]:.1f}/{submit[1]:.1f}/{submit[2]:.1f} ms", flush=True)
    print(f"             errors: {errors}; integrity ({row['acks']} acknowledged): {integrity}", flush=True)
    per = row["cpu_ms_per_rating"]
    print(f"             CPU cores busy: {cpu}; CPU ms per rating: server {per['server']:.1f}, "
          f"postgres {per['postgres']:.1f}, load generator {per['load generator']:.1f}; "
          f"load average {row['load_average'][0]:.2f} -> {row['load_average'][1]:.2f}", flush=True)


def markdown(rows: list[dict]) -> str:
    lines = ["| raters | think time (s) | ratings/s offered / served | lease p50 / p95 / p99 (ms) "
             "| submit p50 / p95 / p99 (ms) | errors | integrity | CPU cores: server / PostgreSQL / load gen "
             "| CPU ms per rating: server / PostgreSQL / load gen | load avg before / after |",
             "|---:|---:|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lease, submit, cpu, per = row["lease"], row["submit"], row["cpu"], row["cpu_ms_per_rating"]
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(row["errors"].items())) or "0"
        think, offered = (f"{row['think_time']:g}", f"{row['offered_per_s']:.0f}") if row["think_time"] else ("0", "—")
        lines.append(
            f"| {row['raters']} | {think} | {offered} / {row['ratings_per_s']:.0f} "
            f"| {lease[0]:.1f} / {lease[1]:.1f} / {lease[2]:.1f} "
            f"| {submit[0]:.1f} / {submit[1]:.1f} / {submit[2]:.1f} | {errors} "
            f"| {'OK' if not row['integrity'] else 'FAILED'} ({row['acks']} acked) "
            f"| {cpu['server']:.2f} / {cpu['postgres']:.2f} / {cpu['load generator']:.2f} "
            f"| {per['server']:.1f} / {per['postgres']:.1f} / {per['load generator']:.1f} "
            f"| {row['load_average'][0]:.1f} / {row['load_average'][1]:.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raters", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per rater count")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--workers", type=int, help="web server processes (tuneloop serve --workers; "
                                                    "default: serve's, one per core)")
    parser.add_argument("--overlap", type=int, default=3, help="answers each item needs")
    parser.add_argument("--items", type=int, default=0, help="items per run (default: enough)")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--flow", choices=["two-requests", "one-request", "batch"], default="two-requests",
                        help="GET /items/next then POST /ratings for each answer; POST "
                             "/ratings?lease_next=true that answers and leases the next item at once; or "
                             "POST /items/leases + POST /ratings/bulk for --batch items at a time")
    parser.add_argument("--batch", type=int, default=20, help="items per request pair with --flow batch")
    parser.add_argument("--think-time", type=float, default=0.0, metavar="T",
                        help="raters as people: each answers once every T seconds on average (Poisson, open "
                             "loop) and leases its next item at once; two requests per answer")
    parser.add_argument("--seed", type=int, default=0, help="of the --think-time answer times")
    parser.add_argument("--database-url", help="a local PostgreSQL to use (its tables are emptied)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    # A closed-loop rater asks as fast as the server answers; paced ones ask rarely, so more fit.
    most = 2000 if args.think_time else 512
    if max(args.raters) > most or args.duration > 600 or min(args.raters) < 1:
        parser.error(f"1..{most} raters and at most 600 s per run")
    if args.think_time < 0 or (args.think_time and (args.flow != "two-requests" or args.client != "raw")):
        parser.error("--think-time is positive and paces the two-requests flow of the raw client")

    if args.database_url and not is_local(args.database_url):
        parser.error(f"--database-url must be a local server, not {urlsplit(args.database_url).hostname}")
    with serving(args.database_url, args.workers) as (database_url, server):
        pg_pid = postmaster_pid(database_url)
        print(f"tuneloop serve --workers {args.workers or 'default'} on {server.url}; PostgreSQL {database_url}; "
              f"client {args.client}, flow {args.flow}, think time {args.think_time:g} s; {os.cpu_count()} CPUs, "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        rows = []
        for raters in args.raters:
            row = run_level(args, raters, database_url, server, pg_pid)
            print_level(row)
            rows.append(row)
        print()
        print(markdown(rows))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        if "Traceback" in server.log():
            print(f"\nthe server logged errors; see {server.log_path}")
        return 0 if all(not r["integrity"] for r in rows) else 1


def is_local(database_url: str) -> bool:
    host = urlsplit(database_url).hostname or ""
    return host in LOOPBACK or host.startswith("/")


@contextlib.contextmanager
def serving(database_url: str | None, workers: int | None):
    """(database URL, running server): the given local PostgreSQL, or a private one made
    for the run, migrated, with `tuneloop serve` on loopback; both gone afterwards
    (the given database stays, its tables emptied by seed)."""
    from app.migrate import upgrade
    from tests.reliability.harness import WebServer
    from tests.services import PostgresServer

    postgres = None if database_url else PostgresServer.start()
    database_url = database_url or postgres.url
    server = None
    try:
        upgrade(database_url)
        env = dict(os.environ) | {"TUNELOOP_DATABASE_URL": database_url,
                                  "TUNELOOP_API_RATE_PER_MINUTE": "100000000",
                                  "TUNELOOP_ENV": "development"}
        log = Path(tempfile.mkdtemp(prefix="tuneloop-load-")) / "server.log"
        server = WebServer(env=env, log_path=log, workers=workers).start()
        yield database_url, server
    finally:
        if server:
            server.stop()
        if postgres:
            postgres.destroy()

if __name__ == "__main__":
    sys.exit(main())
