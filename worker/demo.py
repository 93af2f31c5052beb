"""`tuneloop demo`: the whole loop on one machine, on the embedded defaults.

Builds the small base model if missing, loads the built-in prompts, creates an
admin and a rater (passwords generated once, kept in var/demo-logins.json),
starts the web server and one worker per queue, and prints the URL. Ctrl-C
stops everything; a second run reuses what the first built.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from app.db import session_scope
from app.migrate import upgrade
from app.models import Prompt, User
from app.prompts.service import NewPrompt, add_prompts
from app.settings import get_settings
from app.users.service import create_user, hash_password
from worker.base_checkpoint import build_and_register_base
from worker.training.corpus import builtin_prompts

BUILTIN_SOURCE = "builtin"


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


def prepare() -> dict[str, str]:
    """Everything the demo needs in place; safe to run again."""
    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    build_and_register_base()
    added = ensure_builtin_prompts()
    if added:
        print(f"loaded {added} built-in prompts", file=sys.stderr)
    return ensure_demo_users()


def run_demo(host: str, port: int, simulated_raters: int = 0) -> None:
    started = time.monotonic()
    logins = prepare()
    tuneloop = [sys.executable, "-m", "app.cli"]
    env = dict(os.environ)
    children = [
        subprocess.Popen(tuneloop + ["serve", "--host", host, "--port", str(port)], env=env),
        subprocess.Popen(tuneloop + ["worker", "--queues", "generate", "--beat"], env=env),
        subprocess.Popen(tuneloop + ["worker", "--queues", "train", "--no-beat"], env=env),
    ]
    url = f"http://{host}:{port}"
    if simulated_raters:
        children.append(subprocess.Popen(tuneloop + ["simulate", "--url", url, "--raters",
                                                     str(simulated_raters)], env=env))
    print(f"""
tuneloop is running at {url}  (ready in {time.monotonic() - started:.0f}s)
  admin:  admin / {logins['admin']}   -> {url}/admin
  rater:  rater / {logins['rater']}   -> {url}/rate
Launch a training round from the dashboard once some items are rated.
Ctrl-C stops everything.
""", flush=True)
    try:
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
