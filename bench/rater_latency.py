"""How long a rater waits between pressing Enter and seeing the next item.

Starts the real server (uvicorn, `tuneloop serve`) on a throwaway database,
seeds comparison items and a rater, then answers N items and prints the median
and p99 of "submit and receive the next item":

  http     POST /rate/answer as rate.js sends it, until the reply (which carries
           the next item's HTML) is read: the server's share of the wait.
  browser  headless Chromium, keyboard only: from the key press until the next
           item is on screen, measured in the page (rate.js) and from outside.

    .venv/bin/python bench/rater_latency.py                   # both, 200 submits
    .venv/bin/python bench/rater_latency.py --mode http --submits 500
    .venv/bin/python bench/rater_latency.py --database-url sqlite:///var/bench.db

Without --database-url a private PostgreSQL is started (needs its binaries, as
the tests do). Numbers are per submit, in milliseconds.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench password"
FIELD = re.compile(r'name="(csrf_token|item_id|side_a|side_b|idempotency_key)"\s+value="([^"]*)"')
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def summarise(label: str, samples_ms: list[float]) -> None:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    p90 = ordered[int(round(0.90 * (len(ordered) - 1)))]
    print(f"{label:<34} n={len(ordered):<4} median {statistics.median(ordered):6.1f} ms   "
          f"p90 {p90:6.1f} ms   p99 {p99:6.1f} ms   max {ordered[-1]:6.1f} ms")


def seed(database_url: str, items: int, user: str) -> None:
    from app.db import session_scope
    from app.migrate import upgrade
    from tests.factories import make_items, make_user

    upgrade(database_url)
    with session_scope() as db:
        make_user(db, user, password=PASSWORD)
    with session_scope() as db:
        make_items(db, items, prompt_text="Benchmark prompt {i}: explain something clearly.")


def start_server(port: int) -> subprocess.Popen:
    from tests.services import wait_for_port

    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                              cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_for_port(port, timeout=30)
    return server


def bench_http(base: str, user: str, submits: int) -> list[float]:
    import httpx

    with httpx.Client(base_url=base, follow_redirects=False) as client:
        token = FIELD.search(client.get("/login").text).group(2)
        client.post("/login", data={"name": user, "password": PASSWORD, "csrf_token": token})
        html = client.get("/rate").text
        timings = []
        for _ in range(submits):
            form = dict(FIELD.findall(html))
            body = {k: v for k, v in form.items() if k != "csrf_token"} | {
                "choice": "a", "score_a": "5", "comment": "bench"}
            started = time.perf_counter()
            reply = client.post("/rate/answer", json=body, headers={
                "X-CSRF-Token": form["csrf_token"], "Accept": "application/json"})
            reply.raise_for_status()
            html = reply.json()["html"]
            timings.append((time.perf_counter() - started) * 1000)
            assert reply.json()["notice_key"] == "saved", reply.json()["notice_key"]
        return timings


def bench_browser(base: str, user: str, submits: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import expect, sync_playwright

    outside, inside = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=base)
        page.goto("/login")
        expect(page.locator('input[name="name"]')).to_be_focused()
        page.keyboard.type(user)
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url("**/rate")
        panel = page.locator("#rate-panel")
        for n in range(1, submits + 1):
            page.keyboard.press("1")
            started = time.perf_counter()
            page.keyboard.press("Enter")
            page.locator(f'#rate-panel[data-answered="{n}"]').wait_for(state="attached")
            outside.append((time.perf_counter() - started) * 1000)
            inside.append(float(panel.get_attribute("data-last-round-trip-ms")))
        browser.close()
    return inside, outside


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=200)
    parser.add_argument("--mode", choices=["http", "browser", "both"], default="both")
    parser.add_argument("--database-url", help="default: a private PostgreSQL, thrown away after")
    args = parser.parse_args()

    from tests.services import PostgresServer, free_port

    postgres = None if args.database_url else PostgresServer.start()
    url = args.database_url or postgres.url
    var = tempfile.mkdtemp(prefix="tuneloop-bench-")
    os.environ.update({"TUNELOOP_DATABASE_URL": url, "TUNELOOP_VAR_DIR": var,
                       "TUNELOOP_ENV": "development", "TUNELOOP_API_RATE_PER_MINUTE": "1000000"})
    modes = ["http", "browser"] if args.mode == "both" else [args.mode]
    seed(url, args.submits * len(modes) + 20, "bench-rater")
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        print(f"{args.submits} submits per mode against {base} "
              f"({'PostgreSQL' if url.startswith('postgresql') else url})")
        if "http" in modes:
            bench_http(base, "bench-rater", 10)  # warm up: connections, template cache
            summarise("http: POST answer -> next item", bench_http(base, "bench-rater", args.submits))
        if "browser" in modes:
            inside, outside = bench_browser(base, "bench-rater", args.submits)
            summarise("browser: Enter -> next item (page)", inside)
            summarise("browser: Enter -> next item (outside)", outside)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if postgres:
            postgres.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
