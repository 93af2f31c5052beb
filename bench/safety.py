"""The safety benchmark: how often does a round put a model live that is worse than the one it replaced?

For every rule, number of ratings per round and seed: fresh state (as
bench/loop.py), the small base model, then K cycles of

  1. rating:  R items answered by a simulated rater (this tree's raters:
              fluent over degenerate, then the rule, NOISE flipped);
  2. round:   launch (a refusal is counted, not an error) and run it;
  3. review:  while a candidate is under review, the same rater keeps rating
              what the pool offers (its training pairs and the blind
              candidate-vs-current items) until the raters' verdict, at most
              --review-budget ratings;
  4. verdict: if the current checkpoint changed, the new one is judged against
              the one it replaced on held-out prompts (2 samples each, paired):
              its win rate by the rule (ties half) and its share of degenerate
              samples. "Worse" is a win rate below 45 % or 5 points more
              degenerate samples.

`--today DIR` runs the same cycles on another checkout (a `git worktree` of
an older commit): its app/ and worker/ train and publish, while this tree's
raters, rules and judges rate and judge, so both columns meet the same raters.

    .venv/bin/python bench/safety.py --out bench/results/safety-now.json
    git worktree add /tmp/tuneloop-today 7d55de0
    .venv/bin/python bench/safety.py --today /tmp/tuneloop-today --out bench/results/safety-today.json
    .venv/bin/python bench/safety.py --table bench/results/safety-today.json bench/results/safety-now.json

Each scenario is appended to the JSON as it finishes, so a long run can be
read (and resumed: finished scenarios are skipped) while it goes.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORSE_WIN_RATE = 0.45
WORSE_DEGENERATE = 0.05
BETTER_WIN_RATE = 0.55
MIN_POOL = 50
REVIEW_CHUNK = 20


def load_code(today: Path | None):
    """This tree's raters and judges; the app and worker of `today` (or of this tree);
    returns this tree's bench/loop.py module, running on that code."""
    sys.path.insert(0, str(REPO))
    import simulation.rules  # noqa: F401
    import worker.training.degeneration  # noqa: F401 - cached before the swap: the judges stay this tree's

    if today is not None:
        # Packages, not sys.path: an editable install of this tree would win over sys.path.
        import app

        app.__path__.insert(0, str(today.resolve() / "app"))
        sys.modules["worker"].__path__.insert(0, str(today.resolve() / "worker"))
        sys.modules["worker.training"].__path__.insert(0, str(today.resolve() / "worker" / "training"))
    spec = importlib.util.spec_from_file_location("bench_loop", REPO / "bench" / "loop.py")
    loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    return loop


@dataclass
class Cycle:
    number: int
    ratings: int  # ratings given in this cycle, review included
    outcome: str  # refused, failed, rejected, candidate rejected, promoted, ...
    detail: str = ""
    promoted: bool = False
    # The round's result against the checkpoint it started from, live or not: was it better?
    produced_win_rate: float | None = None
    win_rate: float | None = None  # the new current against the one it replaced
    degenerate: float | None = None  # its share of degenerate samples
    replaced_degenerate: float | None = None
    worse: bool = False


@dataclass
class Scenario:
    code: str  # "now", or "today" with its commit
    rule: str
    ratings: int
    seed: int
    algorithm: str
    noise: float
    cycles: list[Cycle] = field(default_factory=list)
    final_win_rate: float = 0.5  # the last current checkpoint against the base
    seconds: float = 0.0

    @property
    def key(self) -> tuple:
        return (self.code, self.rule, self.ratings, self.seed, self.algorithm, self.noise)


class Judge:
    """Paired samples of two checkpoints on held-out prompts, judged by the rule (fluency first)."""

    def __init__(self, prompts: list[str], rule, seed: int, samples_per_prompt: int = 2):
        from app.settings import get_settings
        from worker.models_cache import loaded_policy
        from worker.training.generation import generate_responses

        self.rule, self.seed = rule, seed
        self.prompts = prompts * samples_per_prompt
        self._load, self._generate = loaded_policy, generate_responses
        settings = get_settings()
        self.generation = {"temperature": settings.generation_temperature,
                           "max_new_tokens": settings.generation_max_new_tokens}
        self._cache: dict[str, list[str]] = {}

    def samples(self, directory: Path) -> list[str]:
        key = str(directory)
        if key not in self._cache:
            with self._load(directory) as (model, tokenizer):
                generated = self._generate(model, tokenizer, self.prompts, batch_size=64, seed=self.seed + 11,
                                           **self.generation)
            self._cache[key] = [g.text for g in generated]
        return self._cache[key]

    def compare(self, new: Path, old: Path) -> tuple[float, float, float]:
        """(win rate of new against old, new's degenerate share, old's degenerate share)."""
        from simulation.rules import prefer
        from worker.training.degeneration import is_degenerate

        a, b = self.samples(new), self.samples(old)
        verdicts = [prefer(self.rule, prompt, x, y) for prompt, x, y in zip(self.prompts, a, b)]
        wins = sum(1.0 if v == "a" else 0.5 if v == "tie" else 0.0 for v in verdicts)
        return (wins / len(verdicts), sum(map(is_degenerate, a)) / len(a), sum(map(is_degenerate, b)) / len(b))


def refill(target: int, rng: random.Random) -> None:
    from sqlalchemy import func, select

    from app.db import session_scope
    from app.models import Item
    from worker.pool import refill_pool

    for _ in range(20):
        with session_scope() as db:
            if db.scalar(select(func.count()).select_from(Item).where(Item.done.is_(False))) >= target:
                return
        try:
            added = refill_pool(seed=rng.getrandbits(31))
        except TypeError:  # an older checkout: no seed
            added = refill_pool()
        if not added:
            return


def rate(loop, user_id: int, count: int, rule, noise: float, rng: random.Random, pool_rng: random.Random,
         target: int) -> int:
    done = 0
    while done < count:
        refill(target, pool_rng)
        try:
            rated = loop.rate_items([(user_id, noise)], min(REVIEW_CHUNK, count - done), rule, rng)
        except TypeError:  # an older checkout: one rater
            rated = loop.rate_items(user_id, min(REVIEW_CHUNK, count - done), rule, noise, rng)
        if not rated:
            break
        done += rated
    return done


def pending_candidate() -> bool:
    if importlib.util.find_spec("app.checkpoints.review") is None:
        return False
    from app.checkpoints.service import under_review
    from app.db import session_scope

    with session_scope() as db:
        return under_review(db) is not None


def review(loop, user_id: int, rule, noise: float, rng, pool_rng, target: int, budget: int) -> tuple[int, str]:
    """Rate until the raters' verdict on the candidate (or the budget); (ratings given, verdict)."""
    if not pending_candidate():
        return 0, ""
    from app.checkpoints.review import review_candidates
    from app.db import session_scope

    given = 0
    while given < budget:
        given += rate(loop, user_id, REVIEW_CHUNK, rule, noise, rng, pool_rng, target)
        with session_scope() as db:
            verdict = review_candidates(db)
        if verdict is not None and verdict.decision:
            return given, f"{verdict.decision}: {verdict.wins:g}/{verdict.decisive} decisive"
    return given, "undecided within the review budget"


def current_dir() -> Path:
    from app.checkpoints.service import current_checkpoint, resolve_path
    from app.db import session_scope

    with session_scope() as db:
        return resolve_path(current_checkpoint(db))


def run_round(round_settings: dict) -> tuple[str, str, Path | None]:
    """Launch and run a round here; (its status, its error or failed gates, its result's directory)."""
    from unittest import mock

    from app.db import session_scope
    from app.errors import TuneloopError
    from app.models import TrainingRound
    from worker import rounds

    try:
        from app.rounds import lifecycle as launcher
        from app.rounds.schemas import RoundSettings
    except ImportError:  # an older checkout: the rounds package was app.training, launching its service's
        from app.training import service as launcher
        from app.training.schemas import RoundSettings
    try:
        with mock.patch.object(launcher, "ensure_queue_available", lambda: None), \
                mock.patch.object(launcher, "send_after_commit", lambda *args, **kwargs: None), \
                session_scope() as db:
            round_id = launcher.launch_round(db, RoundSettings.model_validate(round_settings), None).id
    except TuneloopError as error:
        return "refused", str(error), None
    status = str(rounds.execute_round(round_id))
    from app.checkpoints.service import resolve_path

    with session_scope() as db:
        round_ = db.get(TrainingRound, round_id)
        failed = [g["name"] for g in getattr(round_, "gates", []) if not g["passed"]]
        produced = resolve_path(round_.produced_checkpoint) if round_.produced_checkpoint else None
        return status, (round_.error or "") + (f" [{', '.join(failed)}]" if failed else ""), produced


def run_scenario(loop, scenario: Scenario, rounds: int, workdir: Path, cache: Path, review_budget: int,
                 log) -> Scenario:
    from simulation.rules import RULES
    from worker.training.base_model import BaseModelConfig

    started = time.perf_counter()
    rule = RULES[scenario.rule]
    base_dir = loop.base_model_dir(cache, BaseModelConfig())
    train_prompts, held_out = loop.split_prompts(scenario.seed, 0.25)
    target = max(scenario.ratings, MIN_POOL)
    settings = {"algorithm": scenario.algorithm, "seed": scenario.seed}
    with loop.tuneloop_environment(workdir, None, target, "review") as url:
        try:
            [(user_id, _)] = loop.prepare_state(url, base_dir, train_prompts, {"careful": 1})
        except TypeError:  # an older checkout: one rater
            user_id = loop.prepare_state(url, base_dir, train_prompts)
        judge = Judge(held_out, rule, scenario.seed)
        rng, pool_rng = random.Random(scenario.seed), random.Random(scenario.seed + 7)
        for number in range(1, rounds + 1):
            given = rate(loop, user_id, scenario.ratings, rule, scenario.noise, rng, pool_rng, target)
            before = current_dir()
            status, detail, produced = run_round(settings)
            reviewed, verdict = review(loop, user_id, rule, scenario.noise, rng, pool_rng, target, review_budget)
            after = current_dir()
            outcome = status if not verdict else f"{status}, review: {verdict.split(':')[0]}"
            cycle = Cycle(number, given + reviewed, outcome, f"{detail} {verdict}".strip(), promoted=after != before)
            if produced is not None:
                cycle.produced_win_rate = judge.compare(produced, before)[0]
            if cycle.promoted:
                cycle.win_rate, cycle.degenerate, cycle.replaced_degenerate = judge.compare(after, before)
                cycle.worse = (cycle.win_rate < WORSE_WIN_RATE
                               or cycle.degenerate > cycle.replaced_degenerate + WORSE_DEGENERATE)
            scenario.cycles.append(cycle)
            log(f"  cycle {number}: {given}+{reviewed} ratings, {outcome}"
                + (f", result {cycle.produced_win_rate:.1%} vs parent" if produced is not None else "")
                + (f", live: win {cycle.win_rate:.1%} vs replaced, degenerate {cycle.degenerate:.1%}"
                   f"{' WORSE' if cycle.worse else ''}" if cycle.promoted else "") + f"  {detail[:160]}")
        final = current_dir()
        scenario.final_win_rate = judge.compare(final, base_dir)[0] if final != base_dir else 0.5
    scenario.seconds = time.perf_counter() - started
    return scenario


# Reporting ----------------------------------------------------------------------------

def load_scenarios(path: Path) -> list[Scenario]:
    if not path.exists():
        return []
    rows = json.loads(path.read_text())
    return [Scenario(**{k: v for k, v in row.items() if k != "cycles"}, cycles=[Cycle(**c) for c in row["cycles"]])
            for row in rows]


def table(paths: list[Path], by_rule: bool = False) -> str:
    scenarios = [s for path in paths for s in load_scenarios(path)]
    groups: dict[tuple, list[Scenario]] = {}
    for s in scenarios:
        groups.setdefault((s.code, s.algorithm, s.noise, s.ratings) + ((s.rule,) if by_rule else ()), []).append(s)
    lines = [("| rule " if by_rule else "") + "| code | algorithm | noise | ratings per round | runs (rules x seeds) "
             "| rounds launched | refused "
             "| went live | **worse, went live** | of which degenerate | better (> 55 %) but not live "
             "| final win rate vs base, mean (min-max) | ratings per cycle |",
             ("|---" if by_rule else "") + "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for key, group in sorted(groups.items(), key=lambda kv: (kv[0][4:], kv[0][1], kv[0][2], kv[0][3], kv[0][0])):
        code, algorithm, noise, ratings = key[:4]
        cycles = [c for s in group for c in s.cycles]
        finals = [s.final_win_rate for s in group]
        lines.append(
            (f"| {key[4]} " if by_rule else "") + f"| {code} | {algorithm} | {noise:.0%} | {ratings} | {len(group)} "
            f"| {sum(c.outcome != 'refused' for c in cycles)} | {sum(c.outcome == 'refused' for c in cycles)} "
            f"| {sum(c.promoted for c in cycles)} | **{sum(c.worse for c in cycles)}** "
            f"| {sum(c.worse and c.degenerate > c.replaced_degenerate + WORSE_DEGENERATE for c in cycles)} "
            f"| {sum((c.produced_win_rate or 0) > BETTER_WIN_RATE and not c.promoted for c in cycles)} "
            f"| {statistics.mean(finals):.1%} ({min(finals):.1%}-{max(finals):.1%}) "
            f"| {statistics.mean(c.ratings for c in cycles):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=["positive", "shorter", "topic", "colour"])
    parser.add_argument("--ratings", nargs="+", type=int, default=[5, 20, 50, 500], help="per round")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--noise", type=float, default=0.1, help="share of answers flipped (1.0: random raters)")
    parser.add_argument("--algorithm", choices=("dpo", "ppo"), default="dpo")
    parser.add_argument("--review-budget", type=int, default=800, help="ratings at most while a candidate is reviewed")
    parser.add_argument("--today", type=Path, help="another checkout to run the rounds on (git worktree)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tuneloop-bench-cache")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, help="JSON, appended scenario by scenario")
    parser.add_argument("--table", nargs="+", type=Path, help="print the table of these result files and stop")
    parser.add_argument("--by-rule", action="store_true", help="with --table: a row per rule")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.table, args.by_rule))
        return 0

    loop = load_code(args.today)
    import torch
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(args.threads)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    code = "now"
    if args.today is not None:
        head = (args.today / ".git").read_text().strip() if (args.today / ".git").is_file() else ""
        code = f"today ({os.popen(f'git -C {args.today} rev-parse --short HEAD').read().strip() or head})"
    out = args.out or REPO / "bench" / "results" / f"safety-{code.split()[0]}.json"
    done = {s.key for s in load_scenarios(out)}
    print(f"torch threads {args.threads}, load average {os.getloadavg()[0]:.1f}; code {code}; results {out}",
          flush=True)
    for ratings in args.ratings:
        for rule in args.rules:
            for seed in args.seeds:
                scenario = Scenario(code, rule, ratings, seed, args.algorithm, args.noise)
                if scenario.key in done:
                    continue
                print(f"{rule}, {ratings} ratings per round, seed {seed}, {args.algorithm}, noise {args.noise:.0%}",
                      flush=True)
                workdir = Path(tempfile.mkdtemp(prefix="tuneloop-safety-"))
                try:
                    run_scenario(loop, scenario, args.rounds, workdir, args.cache, args.review_budget,
                                 log=lambda line: print(line, flush=True))
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                rows = json.loads(out.read_text()) if out.exists() else []
                rows.append(asdict(scenario))
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(rows, indent=1))
    print(table([out]))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
