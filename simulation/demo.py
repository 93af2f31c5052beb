"""`tuneloop demo`: the whole loop on one machine, on the embedded defaults.

Loads the built-in prompts, creates an admin and a rater (passwords generated
once, kept in var/demo-logins.json), starts the web server and prints the URL,
builds the small base model if missing, then starts one worker per queue. Ctrl-C
stops everything; a second run reuses what the first built.

Automatic rounds are on in the demo (every `DEMO_ROUND_EVERY_RATINGS` new
ratings, unless TUNELOOP_AUTO_ROUND_EVERY_RATINGS says otherwise), so with
`--simulate N` the loop turns by itself: raters rate, a round trains, its
result is reviewed blind by the same raters, and goes live or not. With two
or more simulated raters, two of them answer each item (unless
TUNELOOP_POOL_OVERLAP says otherwise), so that their reliability can be estimated.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

from sqlalchemy import func, select

from app.checkpoints.service import current_checkpoint
from app.db import session_scope
from app.migrate import upgrade
from app.models import Prompt, User
from app.prompts.service import NewPrompt, add_prompts
from app.settings import get_settings
from app.users.service import create_user, hash_password
from worker.base_checkpoint import build_and_register_base
from worker.training.corpus import builtin_prompts

BUILTIN_SOURCE = "builtin"
DEMO_ROUND_EVERY_RATINGS = 100
# The dashboard shows what workers do; the terminal keeps to warnings.
QUIET_WORKER = ["--quiet", "--loglevel", "WARNING"]


def ensure_demo_users() -> dict[str, str]:
    """{name: password}; generated on the first run, reused afterwards."""
    settings = get_settings()
    logins_file = settings.var_dir / "demo-logins.json"
    logins = json.loads(logins_file.read_text()) if logins_file.exists() else {}
    with session_scope() as db:
        for name, admin in (("admin", True), ("rater", False)):
            password = logins.get(name) or secrets.token_urlsafe(9)
            user = db.scalar(select(User).where(User.name == name))
            if user is None:
                create_user(db, name, admin=admin, password=password)
            elif name not in logins:
                user.password_hash = hash_password(password)
            logins[name] = password
    logins_file.parent.mkdir(parents=True, exist_ok=True)
    logins_file.write_text(json.dumps(logins))
    logins_file.chmod(0o600)
    return logins


def ensure_builtin_prompts() -> int:
    with session_scope() as db:
        if db.scalar(select(func.count()).select_from(Prompt)):
            return 0
        prompts = [NewPrompt(text=p.text, tags=[p.topic], source=BUILTIN_SOURCE) for p in builtin_prompts()]
        return len(add_prompts(db, prompts))


def prepare_database() -> dict[str, str]:
    """Schema, built-in prompts and logins; fast, and safe to run again."""
    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    added = ensure_builtin_prompts()
    if added:
        print(f"loaded {added} built-in prompts", file=sys.stderr)
    return ensure_demo_users()


def _wait_for_server(host: str, port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the web server did not start on {host}:{port}")


def _stop_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt


def run_demo(host: str, port: int, simulated_raters: int = 0) -> None:
    started = time.monotonic()
    # `kill` (SIGTERM) stops the children too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    logins = prepare_database()
    tuneloop = [sys.executable, "-m", "app.cli"]
    env = {"TUNELOOP_AUTO_ROUND_EVERY_RATINGS": str(DEMO_ROUND_EVERY_RATINGS),
           # Two simulated raters on each item: the Raters page can tell them apart (reliability).
           **({"TUNELOOP_POOL_OVERLAP": "2"} if simulated_raters >= 2 else {})} | dict(os.environ)
    url = f"http://{host}:{port}"
    # The server first, so the pages are up while the base model builds.
    children = [subprocess.Popen(tuneloop + ["serve", "--host", host, "--port", str(port), "--log-level", "warning"],
                                 env=env)]
    try:
        _wait_for_server(host, port, children[0])
        print(f"""
tuneloop is up at {url}  ({time.monotonic() - started:.0f}s)
  admin:  admin / {logins['admin']}   -> {url}/admin
  rater:  rater / {logins['rater']}   -> {url}/rate
""", flush=True)
        with session_scope() as db:
            own_model = current_checkpoint(db)
        if own_model is None:
            build_and_register_base()
        else:
            print(f"using the current checkpoint v{own_model.version} ({own_model.name})", file=sys.stderr)
        children += [
            subprocess.Popen(tuneloop + ["worker", "--queues", "generate", "--beat", *QUIET_WORKER], env=env),
            subprocess.Popen(tuneloop + ["worker", "--queues", "train", "--no-beat", *QUIET_WORKER], env=env),
        ]
        if simulated_raters:
            children.append(subprocess.Popen(tuneloop + ["simulate", "--url", url, "--raters",
                                                         str(simulated_raters)], env=env))
        print(f"workers started ({time.monotonic() - started:.0f}s): items to rate appear in a few seconds; "
              f"a round starts by itself every {env['TUNELOOP_AUTO_ROUND_EVERY_RATINGS']} new ratings (or launch "
              "one from the dashboard). Ctrl-C stops everything.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
