"""The `tuneloop` command line.

Every command exits 0 on success and 2 with one `error: ...` line on bad
arguments or input, having changed nothing.
"""

import argparse
import getpass
import sys
from pathlib import Path

from app.errors import TuneloopError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except TuneloopError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuneloop", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    db = commands.add_parser("db", help="database schema").add_subparsers(metavar="ACTION")
    upgrade = db.add_parser("upgrade", help="apply migrations (to head by default)")
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(run=_db_upgrade)
    downgrade = db.add_parser("downgrade", help="revert migrations to REVISION ('base': all)")
    downgrade.add_argument("revision")
    downgrade.set_defaults(run=_db_downgrade)

    user = commands.add_parser("user", help="accounts").add_subparsers(metavar="ACTION")
    create = user.add_parser("create", help="create a rater (or an admin with --admin)")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true")
    create.add_argument("--password", help="omit to be asked; an API-only user when not a terminal")
    create.set_defaults(run=_user_create)
    import_ = user.add_parser("import", help="create accounts from a CSV (name, role), all or none; "
                                             "prints name,token lines once")
    import_.add_argument("file", type=Path)
    import_.set_defaults(run=_user_import)

    token = commands.add_parser("token", help="API tokens").add_subparsers(metavar="ACTION")
    token_create = token.add_parser("create", help="print a new API token for USER (shown once)")
    token_create.add_argument("user")
    token_create.add_argument("--name", default="")
    token_create.set_defaults(run=_token_create)
    token_revoke = token.add_parser("revoke", help="revoke a token, given whole or by its prefix")
    token_revoke.add_argument("token")
    token_revoke.set_defaults(run=_token_revoke)

    prompts = commands.add_parser("prompts", help="prompts").add_subparsers(metavar="ACTION")
    prompts_import = prompts.add_parser("import", help="import prompts from a .jsonl or .csv file")
    prompts_import.add_argument("file", type=Path)
    prompts_import.add_argument("--source", help="source label (default: the file name)")
    prompts_import.set_defaults(run=_prompts_import)
    prompts_source = prompts.add_parser("source", help="show or set how the pool draws training items for a "
                                                       "source: random pairs, or chosen by uncertainty or "
                                                       "contrast (active selection), or single responses")
    prompts_source.add_argument("name")
    prompts_source.add_argument("--selection", choices=("random", "uncertainty", "contrast"))
    prompts_source.add_argument("--random-share", type=float, help="share of pairs drawn at random anyway (0.25)")
    prompts_source.add_argument("--candidates", type=int, help="samples per prompt to choose a pair from (4)")
    prompts_source.add_argument("--responses", type=int, choices=(1, 2),
                                help="per training item: 2 to compare (default), 1 to score or thumb")
    prompts_source.set_defaults(run=_prompts_source)

    serve = commands.add_parser("serve", help="run the web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, help="web server processes (default: one per core it may use; "
                                                   "one on SQLite, whose single write lock they would queue on)")
    serve.add_argument("--keep-alive", type=int, default=75,
                       help="seconds an idle client connection stays open (75: longer than a rater "
                            "thinks, so an answer rarely needs a new connection)")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                       help="warning drops the per-request access lines")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", default="generate,train", help="comma-separated: generate,train")
    worker.add_argument("--beat", action=argparse.BooleanOptionalAction, default=None,
                        help="run the periodic refill/dispatch schedule (default: with 'generate')")
    worker.add_argument("--loglevel", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    worker.add_argument("--quiet", action="store_true", help="no start-up banner")
    worker.set_defaults(run=_worker)
    beat = commands.add_parser("beat", help="run the periodic refill/dispatch schedule alone: one for any number "
                                            "of workers started with --no-beat")
    beat.add_argument("--loglevel", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    beat.set_defaults(run=_beat)
    train_node = commands.add_parser("train-node", help="on each machine but the training worker's, when rounds "
                                                        "train on TUNELOOP_TRAIN_NODES machines: join their jobs")
    train_node.add_argument("--node-rank", type=int, required=True,
                            help="this machine's place, 1 to TUNELOOP_TRAIN_NODES - 1 (the training worker is 0)")
    train_node.set_defaults(run=_train_node)

    checkpoint = commands.add_parser("checkpoint", help="checkpoints").add_subparsers(metavar="ACTION")
    register = checkpoint.add_parser("register", help="register a local Hugging Face causal LM directory "
                                                      "(in place; an object store gets a copy)")
    register.add_argument("path", type=Path)
    register.add_argument("--name", default="")
    register.set_defaults(run=_checkpoint_register)
    build_base = checkpoint.add_parser("build-base", help="build the small local base model and register it")
    build_base.set_defaults(run=_checkpoint_build_base)
    export = checkpoint.add_parser("export", help="write a checkpoint as a standalone Hugging Face model directory")
    export.add_argument("id", type=int, help="the checkpoint's id (GET /api/v1/checkpoints)")
    export.add_argument("dir", type=Path, help="a directory that does not exist yet")
    export.set_defaults(run=_checkpoint_export)

    demo = commands.add_parser("demo", help="run the whole loop locally on the embedded defaults")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--simulate", type=int, default=0, metavar="N", help="also run N simulated raters")
    demo.set_defaults(run=_demo)

    simulate = commands.add_parser("simulate", help="run simulated raters against a server's REST API")
    simulate.add_argument("--url", default="http://127.0.0.1:8000")
    simulate.add_argument("--raters", type=int, metavar="N",
                          help="how many (default: one per --token, else 1); users sim-1..N")
    simulate.add_argument("--rule", default="positive",
                          help="positive, shorter, topic, colour, or module:function (prompt, response) -> score")
    simulate.add_argument("--noise", type=float, default=0.1, help="share of answers flipped (default 0.1)")
    simulate.add_argument("--delay", type=float, default=1.0, help="seconds per answer (default 1)")
    simulate.add_argument("--token", action="append", default=[],
                          help="rate with this API token (repeatable); omit to use users sim-1..N")
    simulate.add_argument("--max-ratings", type=int, help="stop after this many answers, all raters together")
    simulate.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    simulate.add_argument("--idle-exit", type=float, metavar="SECONDS",
                          help="stop a rater once nothing has been rateable for this long")
    simulate.add_argument("--seed", type=int)
    simulate.set_defaults(run=_simulate)
    return parser


def _db_upgrade(args) -> None:
    from app.migrate import upgrade
    from app.settings import get_settings

    upgrade(get_settings().database_url, args.revision)


def _db_downgrade(args) -> None:
    from app.migrate import downgrade
    from app.settings import get_settings

    downgrade(get_settings().database_url, args.revision)


def _user_create(args) -> None:
    from app.db import session_scope
    from app.users.service import create_user

    password = args.password
    if password is None and sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ") or None
    with session_scope() as db:
        user = create_user(db, args.name, admin=args.admin, password=password)
        print(f"created {user.role} {user.name} (id {user.id})", file=sys.stderr)


def _user_import(args) -> None:
    from app.db import session_scope
    from app.errors import InvalidInput
    from app.users.onboarding import import_users, parse_users

    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{args.file}: {getattr(error, 'strerror', None) or error}") from None
    users = parse_users(text, str(args.file))
    with session_scope() as db:
        created = import_users(db, users, str(args.file))
    # Printed only once the transaction committed: a token shown is a token that works.
    print("name,token")
    for name, token in created:
        print(f"{name},{token}")
    print(f"created {len(created)} users", file=sys.stderr)


def _token_create(args) -> None:
    from app.db import session_scope
    from app.users.service import create_token, get_user_by_name

    with session_scope() as db:
        token = create_token(db, get_user_by_name(db, args.user), name=args.name)
    print(token)


def _token_revoke(args) -> None:
    from app.db import session_scope
    from app.errors import NotFound
    from app.users.service import revoke_token

    with session_scope() as db:
        if not revoke_token(db, args.token):
            raise NotFound("no live token matches")
    print("revoked", file=sys.stderr)


def _prompts_import(args) -> None:
    from app.db import session_scope
    from app.prompts.service import add_prompts, parse_prompt_file

    prompts = parse_prompt_file(args.file, args.source)
    with session_scope() as db:
        ids = add_prompts(db, prompts)
    print(f"imported {len(ids)} prompts from {args.file}", file=sys.stderr)


def _prompts_source(args) -> None:
    from dataclasses import replace

    from app.db import session_scope
    from app.prompts.sources import SourceSettings, configure_source, source_settings

    with session_scope() as db:
        settings = source_settings(db).get(args.name, SourceSettings())
        changes = {key: value for key, value in (("selection", args.selection), ("random_share", args.random_share),
                                                 ("candidates", args.candidates), ("responses", args.responses))
                   if value is not None}
        if changes:
            settings = configure_source(db, args.name, replace(settings, **changes))
    print(f"{args.name}: selection {settings.selection}, random share {settings.random_share:g}, "
          f"candidates {settings.candidates}, responses per item {settings.responses}")


def _serve(args) -> None:
    import os
    import tempfile

    import uvicorn

    from app.errors import InvalidInput
    from app.settings import get_settings

    workers = default_web_workers(get_settings().database_url) if args.workers is None else args.workers
    if workers < 1 or args.keep_alive <= 0:
        raise InvalidInput("--workers and --keep-alive must be positive")
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # The processes write their request latencies where /metrics adds them up (app/monitoring.py).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tuneloop-metrics-")

    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, workers=workers,
                timeout_keep_alive=args.keep_alive, proxy_headers=True, log_level=args.log_level)


def default_web_workers(database_url: str) -> int:
    """One web process per core this process may run on: a process serves requests on one
    core at a time (the GIL). One on SQLite: every transaction there takes the single write
    lock (app.db), so more processes would only queue on it, polling its busy timeout."""
    import os

    return 1 if database_url.startswith("sqlite") else len(os.sched_getaffinity(0))


def _worker(args) -> None:
    from worker.run import run_worker

    run_worker([q.strip() for q in args.queues.split(",") if q.strip()], beat=args.beat,
               loglevel=args.loglevel, quiet=args.quiet)


def _beat(args) -> None:
    from worker.run import run_beat

    run_beat(loglevel=args.loglevel)


def _train_node(args) -> None:
    from app.errors import InvalidInput

    if args.node_rank < 1:
        raise InvalidInput("--node-rank must be 1 or more: node 0 is the training worker", field="node_rank")
    from worker.train_node import serve

    serve(args.node_rank)


def _checkpoint_register(args) -> None:
    from app.checkpoints.model_dir import ModelDir
    from app.checkpoints.service import register_checkpoint
    from app.db import session_scope
    from app.errors import InvalidInput
    from worker.training.checkpoint_files import CheckpointError

    try:
        with session_scope() as db:
            checkpoint = register_checkpoint(db, args.path, name=args.name)
            print(f"registered checkpoint v{checkpoint.version} ({checkpoint.status}) as {checkpoint.path}: "
                  f"{ModelDir(**checkpoint.metrics).describe()}", file=sys.stderr)
    except (OSError, CheckpointError) as error:  # an object store that refuses or cannot be reached
        raise InvalidInput(f"{error.__class__.__name__}: {error}") from None


def _checkpoint_export(args) -> None:
    from app.checkpoints.service import get_checkpoint
    from app.db import session_scope
    from app.errors import InvalidInput
    from worker.checkpoint_export import export_checkpoint
    from worker.checkpoint_models import model_ref
    from worker.training.checkpoint_io import CheckpointError

    try:
        with session_scope() as db:
            checkpoint = get_checkpoint(db, args.id)
            (source, base), version = model_ref(db, checkpoint), checkpoint.version
        export_checkpoint(source, args.dir, base)
    except (FileExistsError, ValueError, CheckpointError) as error:
        raise InvalidInput(str(error)) from None
    print(f"exported checkpoint v{version} to {args.dir}", file=sys.stderr)


def _checkpoint_build_base(args) -> None:
    from worker.base_checkpoint import build_and_register_base

    build_and_register_base()


def _demo(args) -> None:
    from simulation.demo import run_demo

    run_demo(host=args.host, port=args.port, simulated_raters=args.simulate)


def _simulate(args) -> int:
    from app.errors import InvalidInput
    from simulation.raters import SimulationConfig, load_rule, simulate

    if args.raters is not None and args.raters < 1:
        raise InvalidInput("--raters must be at least 1")
    if not 0.0 <= args.noise <= 1.0 or args.delay < 0:
        raise InvalidInput("--noise must be within 0..1 and --delay not negative")
    try:
        rule = load_rule(args.rule)
        config = SimulationConfig(url=args.url, rule=rule, noise=args.noise, delay=args.delay,
                                  max_ratings=args.max_ratings, duration=args.duration,
                                  idle_exit=args.idle_exit, seed=args.seed)
        stats = simulate(config, raters=args.raters, tokens=args.token)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    return 1 if any(s.error for s in stats) else 0


if __name__ == "__main__":
    raise SystemExit(main())
