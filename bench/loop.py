"""The learning benchmark: does the closed loop learn what its raters want?

Fresh state (a temporary directory; SQLite by default, or an empty database
named by --database-url), the small local base model, the built-in prompts
split into training prompts (the only ones the loop ever sees) and held-out
prompts. Then K rounds of:

  1. rating:      R answers to items from the pool, in-process, by simulated
                  raters following RULE with NOISE of their answers flipped
                  (--crowd: random clickers and adversarial raters too,
                  --overlap of them on each item), taking turns, through the
                  same services the REST API calls (lease_next_item,
                  leased_item_view, submit_rating);
  2. training:    launch_round + execute_round, in this process (reward model,
                  PPO or DPO under the watch, gates, publish); the result goes
                  live when its gates pass (TUNELOOP_PROMOTION=gates, or
                  --promotion): the raters' blind review is bench/safety.py's;
  3. generation:  refill_pool from the new current checkpoint;
  4. evaluation:  on the held-out prompts, the rule's satisfaction rate of the
                  new checkpoint's samples, its win rate against the base
                  (paired samples per prompt, judged by the rule without noise,
                  ties count half), and its KL to the base (mean per-sequence
                  log-prob difference on the new model's own samples).

    .venv/bin/python bench/loop.py --rule positive            # 3 rounds x 500 ratings, DPO
    .venv/bin/python bench/loop.py --rule topic --algorithm ppo --round policy_steps=60

On demand, not in CI (tests/bench/test_loop_short.py runs a one-round version).
"""

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from unittest import mock

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from sqlalchemy import func, select
from transformers.utils import logging as transformers_logging

from simulation.rules import RULES, Rule, prefer, satisfaction
from worker.training.base_model import BaseModelConfig, build_base_model
from worker.training.corpus import builtin_prompts
from worker.training.generation import Generated, generate_responses
from worker.training.logprobs import token_logprobs
from worker.training.sequences import pad_prompt_response

RESULTS = Path(__file__).resolve().parent / "results"
WIN_RATE_TARGET = 0.8
PROMPT_SOURCE = "builtin"
# Share of answers each simulated rater profile flips (None: the run's --noise): a random
# clicker is a coin, an adversarial rater always answers against the rule.
PROFILES = {"careful": None, "random": 0.5, "adversarial": 1.0}


@dataclass
class BenchConfig:
    rule: str = "positive"
    rounds: int = 3
    ratings: int = 500  # per round
    noise: float = 0.1  # share of a careful rater's answers flipped
    # Who rates: how many simulated raters of each profile (PROFILES), and how many of them answer
    # each item (TUNELOOP_POOL_OVERLAP); ratings are taken from them in turn.
    crowd: dict[str, int] = field(default_factory=lambda: {"careful": 1})
    overlap: int = 1
    # How the pool draws training pairs (app.prompts.sources): "random", or "uncertainty" or
    # "contrast" with this share of pairs random anyway.
    selection: str = "random"
    random_share: float = 0.25
    # Thumbs alone: the pool offers single responses (no comparisons at all, not even the
    # progress items that compare a checkpoint with its parent) and raters give a thumb up or
    # down by the rule. Only PPO's reward model learns from thumbs.
    thumbs: bool = False
    # Round settings (RoundSettings fields); unset ones keep the app's defaults.
    round_settings: dict = field(default_factory=lambda: {"algorithm": "dpo"})
    held_out_share: float = 0.25
    eval_samples: int = 4  # samples per held-out prompt, for each of base and new
    seed: int = 0
    base_model: BaseModelConfig = field(default_factory=BaseModelConfig)
    # What a round's result becomes (TUNELOOP_PROMOTION): "gates" puts results that pass
    # their gates live at once; "immediate" puts every result live.
    promotion: str = "gates"
    # torch's intra-op threads (None: torch's default, one per core). On cores
    # shared with other busy processes, 1 thread is several times faster:
    # waiting threads spin while their partner is descheduled.
    torch_threads: int | None = None


@dataclass
class Evaluation:
    satisfaction: float
    win_rate: float  # against the base; ties half
    ties: float  # share of tied pairs
    decisive_win_rate: float  # wins among the pairs the rule tells apart
    kl: float
    mean_words: float


@dataclass
class RoundResult:
    round: int
    evaluation: Evaluation
    seconds: dict[str, float]  # rating, reward_model, policy, publish, generation, evaluation
    round_metrics: dict[str, float] = field(default_factory=dict)
    status: str = ""  # the round's: succeeded, or rejected (its result did not go live)
    failed_gates: list[str] = field(default_factory=list)
    yes_no_rule: bool = False  # the rule scored the base's samples with two values only
    rater_weights: dict[str, float] = field(default_factory=dict)

    @property
    def round_seconds(self) -> float:
        """A round as the loop runs it: reward model + policy optimisation + publish + pool refilled."""
        return sum(self.seconds.get(k, 0.0) for k in ("reward_model", "policy", "publish", "generation"))


# Fresh state -------------------------------------------------------------------

@contextlib.contextmanager
def tuneloop_environment(workdir: Path, database_url: str | None, pool_target: int,
                         promotion: str = "gates", overlap: int = 1, progress_share: float | None = None
                         ) -> Iterator[str]:
    """Point tuneloop's settings at `workdir` (and the database); restore them afterwards."""
    from app import db, settings

    def reset() -> None:
        if db.get_engine.cache_info().currsize:
            db.get_engine().dispose()
        settings.get_settings.cache_clear()
        db.get_engine.cache_clear()
        db.get_sessionmaker.cache_clear()

    url = database_url or f"sqlite:///{workdir / 'tuneloop.db'}"
    saved = dict(os.environ)
    os.environ.update({
        "TUNELOOP_DATABASE_URL": url,
        "TUNELOOP_VAR_DIR": str(workdir / "var"),
        "TUNELOOP_CHECKPOINT_DIR": str(workdir / "checkpoints"),
        # The pool holds exactly one round's worth of items, refilled after each round.
        "TUNELOOP_POOL_TARGET": str(pool_target),
        "TUNELOOP_POOL_OVERLAP": str(overlap),
        "TUNELOOP_PROMOTION": promotion,
        "HF_HUB_OFFLINE": "1",
    } | ({"TUNELOOP_PROGRESS_SHARE": str(progress_share)} if progress_share is not None else {}))
    reset()
    try:
        yield url
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset()


def prepare_state(url: str, base_dir: Path, train_prompts: list[tuple[str, str]], crowd: dict[str, int],
                  selection: str = "random", random_share: float = 0.25, responses: int = 2) -> list[tuple[int, str]]:
    """Migrate, refuse a used database, register the base model and the training prompts (their
    source drawing pairs as `selection` says); returns the simulated raters' user ids and profiles."""
    from app.checkpoints.service import register_checkpoint
    from app.db import session_scope
    from app.migrate import upgrade
    from app.models import Checkpoint, Prompt, Rating
    from app.prompts.service import NewPrompt, add_prompts
    from app.prompts.sources import SourceSettings, configure_source
    from app.users.service import create_user
    from worker.training.checkpoint_io import read_metadata

    upgrade(url)
    with session_scope() as db:
        for table in (Prompt, Checkpoint, Rating):
            if db.scalar(select(func.count()).select_from(table)):
                raise SystemExit(f"error: the benchmark needs an empty database; {url} has {table.__tablename__} rows")
        register_checkpoint(db, base_dir, name="base", content_hash=read_metadata(base_dir)["content_hash"])
        add_prompts(db, [NewPrompt(text=text, tags=[topic], source=PROMPT_SOURCE) for text, topic in train_prompts])
        configure_source(db, PROMPT_SOURCE, SourceSettings(selection, random_share, responses=responses))
        return [(create_user(db, f"sim-{profile}-{n}").id, profile)
                for profile, count in sorted(crowd.items()) for n in range(1, count + 1)]


def base_model_dir(cache: Path, config: BaseModelConfig) -> Path:
    key = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:10]
    return build_base_model(cache / f"base-{key}", config)


# The loop's phases ---------------------------------------------------------------

def fill_pool(target: int, rng: random.Random) -> int:
    """Refill until `target` items are open (one call adds at most one item per prompt);
    seeded from `rng`, so a run's items repeat."""
    from app.db import session_scope
    from app.models import Item
    from worker.pool import refill_pool

    while True:
        with session_scope() as db:
            open_items = db.scalar(select(func.count()).select_from(Item).where(Item.done.is_(False)))
        if open_items >= target or not refill_pool(seed=rng.getrandbits(31)):
            return open_items


def rate_items(raters: list[tuple[int, float]], count: int, rule: Rule, rng: random.Random,
               thumbs: bool = False) -> int:
    """Answer up to `count` items as the API would, one transaction each, the raters (user id,
    share of answers flipped) taking turns; returns how many."""
    from app.db import session_scope
    from app.feedback.leasing import lease_next_item
    from app.feedback.ratings import RatingInput, submit_rating
    from app.feedback.views import leased_item_view
    from simulation.raters import answer_item

    dry = 0
    done = 0
    while done < count and dry < len(raters):
        user_id, noise = raters[(done + dry) % len(raters)]
        with session_scope() as db:
            leased = lease_next_item(db, user_id, rng=rng)
            if leased is None:  # nothing left that this rater has not answered
                dry += 1
                continue
            body = answer_item(rule, leased_item_view(leased).model_dump(mode="json"), noise, rng, thumbs)
            body["scores"] = {int(k): v for k, v in body.get("scores", {}).items()}
            submit_rating(db, user_id, RatingInput(**body))
        done, dry = done + 1, 0
    return done


@dataclass
class TrainedRound:
    seconds: dict[str, float]  # per phase
    metrics: dict[str, float]  # the produced checkpoint's
    status: str
    failed_gates: list[str]
    rater_weights: dict[str, float]  # by rater name, as the round weighed them


def train_round(round_settings: dict) -> TrainedRound:
    """Launch a round and run it here (its result goes live or not, as its gates and the
    promotion setting say)."""
    from app.db import session_scope
    from app.models import RoundStatus, TrainingRound
    from app.rounds import lifecycle
    from app.rounds.schemas import RoundSettings
    from worker import rounds

    seconds: dict[str, float] = {}

    def timed(run_trainer):
        def run(trainer: str, *args, **kwargs):
            phase = "reward_model" if trainer == "reward_model" else "policy"
            started = time.perf_counter()
            try:
                return run_trainer(trainer, *args, **kwargs)
            finally:
                seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - started
        return run

    settings = RoundSettings.model_validate(round_settings)
    # The round runs in this process, so no broker is involved: launch_round's
    # checks and bookkeeping run as in the app, its queue calls are no-ops.
    with mock.patch.object(lifecycle, "ensure_queue_available", lambda: None), \
            mock.patch.object(lifecycle, "send_after_commit", lambda *args, **kwargs: None), \
            session_scope() as db:
        round_id = lifecycle.launch_round(db, settings, None).id
    started = time.perf_counter()
    with mock.patch.object(rounds, "run_trainer", timed(rounds.run_trainer)):
        status = rounds.execute_round(round_id)
    total = time.perf_counter() - started
    with session_scope() as db:
        round_ = db.get(TrainingRound, round_id)
        if status not in (RoundStatus.succeeded, RoundStatus.rejected):
            raise RuntimeError(f"round {round_id} {status}: {round_.error}\n{round_.log}")
        metrics = dict(round_.produced_checkpoint.metrics) if round_.produced_checkpoint else {}
        failed = [gate["name"] for gate in round_.gates if not gate["passed"]]
        weights = round_.report.get("rater_weights", {})
    # Snapshot of ratings, heartbeat, checkpoint registration and the switch to current.
    seconds["publish"] = total - seconds.get("reward_model", 0.0) - seconds.get("policy", 0.0)
    return TrainedRound(seconds, metrics, str(status), failed, weights)


def current_checkpoint_dir() -> Path:
    from app.checkpoints.service import current_checkpoint, resolve_path
    from app.db import session_scope

    with session_scope() as db:
        return resolve_path(current_checkpoint(db))


# Evaluation on held-out prompts ------------------------------------------------

class Evaluator:
    """Samples the base once; then judges each new checkpoint against it."""

    def __init__(self, base_dir: Path, prompts: list[str], rule: Rule, samples_per_prompt: int, seed: int):
        from app.settings import get_settings
        from worker.models_cache import loaded_policy

        self.rule = rule
        self.prompts = prompts * samples_per_prompt
        self.seed = seed
        settings = get_settings()
        self.generation = {"temperature": settings.generation_temperature,
                           "max_new_tokens": settings.generation_max_new_tokens}
        self._load = loaded_policy
        # Bench rounds train every weight: each checkpoint is a model of its own, kept by reference.
        with loaded_policy(base_dir) as (self.base_model, self.tokenizer):
            self.base_samples = self.sample(self.base_model, seed + 1)

    def base_scores_are_yes_no(self) -> bool:
        return len({self.rule.score(s.prompt, s.text) for s in self.base_samples}) <= 2

    def sample(self, model, seed: int) -> list[Generated]:
        return generate_responses(model, self.tokenizer, self.prompts, batch_size=64, seed=seed, **self.generation)

    def evaluate(self, checkpoint_dir: Path) -> Evaluation:
        with self._load(checkpoint_dir) as (model, _):
            samples = self.sample(model, self.seed + 2)
            kl = self.kl_to_base(model, samples)
        verdicts = [prefer(self.rule, new.prompt, new.text, base.text)
                    for new, base in zip(samples, self.base_samples)]
        wins = sum(1.0 if v == "a" else 0.5 if v == "tie" else 0.0 for v in verdicts)
        decisive = len(verdicts) - verdicts.count("tie")
        return Evaluation(
            satisfaction=sum(satisfaction(self.rule, s.prompt, s.text) for s in samples) / len(samples),
            win_rate=wins / len(verdicts),
            ties=verdicts.count("tie") / len(verdicts),
            decisive_win_rate=verdicts.count("a") / decisive if decisive else 0.5,
            kl=kl,
            mean_words=sum(len(s.text.split()) for s in samples) / len(samples),
        )

    @torch.no_grad()
    def kl_to_base(self, model, samples: list[Generated], batch_size: int = 64) -> float:
        """Mean over the new model's samples of log p_new(response) - log p_base(response)."""
        total = 0.0
        temperature = self.generation["temperature"] or 1.0
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            input_ids, attention_mask, response_mask = pad_prompt_response(
                [s.prompt_ids for s in batch], [s.token_ids for s in batch], self.tokenizer.pad_token_id)
            mask = response_mask[:, 1:].float()  # (B, T-1): the tokens the response chose
            new, _ = token_logprobs(model, input_ids, attention_mask, temperature)
            base, _ = token_logprobs(self.base_model, input_ids, attention_mask, temperature)
            total += ((new - base) * mask).sum().item()
        return total / len(samples)


# The benchmark -------------------------------------------------------------------

def split_prompts(seed: int, held_out_share: float) -> tuple[list[tuple[str, str]], list[str]]:
    prompts = builtin_prompts(seed)
    held = round(len(prompts) * held_out_share)
    return [(p.text, p.topic) for p in prompts[held:]], [p.text for p in prompts[:held]]


def run_benchmark(config: BenchConfig, workdir: Path, cache: Path, database_url: str | None = None,
                  log=print) -> list[RoundResult]:
    threads = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads or threads)
    try:
        return _run_benchmark(config, workdir, cache, database_url, log)
    finally:
        torch.set_num_threads(threads)


def _run_benchmark(config: BenchConfig, workdir: Path, cache: Path, database_url: str | None,
                   log) -> list[RoundResult]:
    rule = RULES[config.rule]
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    base_dir = base_model_dir(cache, config.base_model)
    log(f"base model ready in {time.perf_counter() - started:.0f}s: {base_dir}")
    train_prompts, held_out = split_prompts(config.seed, config.held_out_share)
    settings = {"seed": config.seed} | config.round_settings
    results = []
    items = -(-config.ratings // config.overlap)  # a round's ratings cover this many items
    with tuneloop_environment(workdir, database_url, items, config.promotion, config.overlap,
                              0.0 if config.thumbs else None) as url:
        raters = [(user_id, config.noise if PROFILES[profile] is None else PROFILES[profile])
                  for user_id, profile in prepare_state(url, base_dir, train_prompts, config.crowd,
                                                     config.selection, config.random_share,
                                                     1 if config.thumbs else 2)]
        log(f"{len(train_prompts)} training prompts, {len(held_out)} held out; database {url.split('://')[0]}; "
            f"rule {rule.name!r}, noise {config.noise:.0%}, raters {config.crowd} x{config.overlap} an item, "
            f"{'thumbs on single responses' if config.thumbs else f'pairs {config.selection}'}, "
            f"round settings {settings}")
        seconds = {}
        started = time.perf_counter()
        evaluator = Evaluator(base_dir, held_out, rule, config.eval_samples, config.seed)
        results.append(RoundResult(0, evaluator.evaluate(base_dir), {"evaluation": time.perf_counter() - started},
                                   yes_no_rule=evaluator.base_scores_are_yes_no()))
        log(format_row(results[-1]))
        started = time.perf_counter()
        pool_rng = random.Random(config.seed + 7)
        fill_pool(items, pool_rng)
        seconds["generation"] = time.perf_counter() - started
        rng = random.Random(config.seed)
        for number in range(1, config.rounds + 1):
            started = time.perf_counter()
            rated = rate_items(raters, config.ratings, rule, rng, config.thumbs)
            seconds = {"rating": time.perf_counter() - started}
            if rated < config.ratings:
                raise RuntimeError(f"the pool ran dry after {rated} of {config.ratings} ratings")
            trained = train_round(settings)
            seconds |= trained.seconds
            started = time.perf_counter()
            fill_pool(items, pool_rng)
            seconds["generation"] = time.perf_counter() - started
            started = time.perf_counter()
            evaluation = evaluator.evaluate(current_checkpoint_dir())
            seconds["evaluation"] = time.perf_counter() - started
            results.append(RoundResult(number, evaluation, seconds, trained.metrics, trained.status,
                                       trained.failed_gates, rater_weights=trained.rater_weights))
            log(format_row(results[-1]))
    return results


# Reporting ------------------------------------------------------------------------

HEADER = (f"{'round':>5} {'satisfied':>9} {'win rate':>8} {'ties':>5} {'decisive':>8} {'KL':>6} {'words':>5} | "
          f"{'rating':>6} {'reward':>6} {'policy':>6} {'publish':>7} {'refill':>6} {'round':>6} {'eval':>5}")


def format_row(result: RoundResult) -> str:
    e, s = result.evaluation, result.seconds

    def t(key: str) -> str:
        return f"{s[key]:.1f}" if key in s else "-"

    round_time = f"{result.round_seconds:.1f}" if result.round else "-"
    outcome = f" {result.status}" + (f" ({', '.join(result.failed_gates)})" if result.failed_gates else "")
    return (f"{result.round:>5} {e.satisfaction:>9.1%} {e.win_rate:>8.1%} {e.ties:>5.0%} "
            f"{e.decisive_win_rate:>8.1%} {e.kl:>6.2f} {e.mean_words:>5.1f} | {t('rating'):>6} "
            f"{t('reward_model'):>6} {t('policy'):>6} {t('publish'):>7} {t('generation'):>6} {round_time:>6} "
            f"{t('evaluation'):>5}{outcome if result.round else ''}")


def ratings_to_target(results: list[RoundResult], ratings_per_round: int) -> int | None:
    """Ratings rated before the first round whose checkpoint reached the target win rate; None if none did."""
    return next((r.round * ratings_per_round for r in results[1:] if r.evaluation.win_rate >= WIN_RATE_TARGET),
                None)


def summary(results: list[RoundResult], total_seconds: float) -> str:
    base, last = results[0].evaluation, results[-1].evaluation
    ceiling = ""
    if results[0].yes_no_rule:
        # Against a base that satisfies a yes/no rule at rate q, a model that always
        # satisfies it wins at most 1 - q/2: the pairs where the base did too are ties.
        ceiling = f" (this yes/no rule caps it at {1 - base.satisfaction / 2:.1%} against this base)"
    slowest = max(r.round_seconds for r in results[1:]) if len(results) > 1 else 0.0
    return (f"win rate after {len(results) - 1} rounds: {last.win_rate:.1%} (target {WIN_RATE_TARGET:.0%}){ceiling}; "
            f"{last.decisive_win_rate:.1%} of the pairs the rule tells apart; "
            f"satisfaction {base.satisfaction:.1%} -> {last.satisfaction:.1%}; "
            f"slowest round {slowest:.0f}s; whole run {total_seconds:.0f}s")


def plot(results: list[RoundResult], title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r.round for r in results]
    figure, (quality, kl, times) = plt.subplots(1, 3, figsize=(14, 4))
    quality.plot(rounds, [r.evaluation.satisfaction for r in results], "o-", label="rule satisfied")
    quality.plot(rounds, [r.evaluation.win_rate for r in results], "s-", label="win rate vs base")
    quality.plot(rounds, [r.evaluation.decisive_win_rate for r in results], "^--", label="win rate, untied pairs")
    quality.axhline(WIN_RATE_TARGET, color="grey", linestyle=":", label=f"target {WIN_RATE_TARGET:.0%}")
    quality.set(xlabel="round", ylim=(0, 1), xticks=rounds, title="held-out prompts")
    quality.legend(loc="lower right")
    kl.plot(rounds, [r.evaluation.kl for r in results], "o-", color="tab:red")
    kl.set(xlabel="round", ylabel="nats per response", xticks=rounds, title="KL to the base")
    bottom = [0.0] * (len(results) - 1)
    for phase in ("rating", "reward_model", "policy", "publish", "generation", "evaluation"):
        values = [r.seconds.get(phase, 0.0) for r in results[1:]]
        times.bar(rounds[1:], values, bottom=bottom, label=phase.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, values)]
    times.set(xlabel="round", ylabel="seconds", xticks=rounds[1:], title="wall time per phase",
              ylim=(0, 1.5 * max(bottom, default=1.0)))
    times.legend(fontsize="small", loc="upper left", ncol=2)
    figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)


def table(paths: list[Path]) -> str:
    """A markdown table of runs' JSON files, one row per rule and way of rating (pairs by their
    selection, or thumbs), the seeds side by side: the ratings each took to reach the target win
    rate, and the win rate after each round."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for path in paths:
        run = json.loads(Path(path).read_text())
        config = run["config"]
        way = "thumbs" if config.get("thumbs") else f"pairs: {config.get('selection', 'random')}"
        runs.setdefault((config["rule"], way), []).append(run)
    lines = [f"| rule | ratings | seeds | ratings to {WIN_RATE_TARGET:.0%} (each seed) | mean | "
             "win rate after each round (mean over seeds) |", "|---|---|---|---|---:|---|"]
    for (rule, way), group in sorted(runs.items()):
        group.sort(key=lambda run: run["config"]["seed"])
        reached = [run.get("ratings_to_target") for run in group]
        known = [r for r in reached if r is not None]
        mean = f"{sum(known) / len(known):.0f}" if len(known) == len(reached) else "not all reached"
        per_round = [sum(run["rounds"][i]["evaluation"]["win_rate"] for run in group) / len(group)
                     for i in range(1, min(len(run["rounds"]) for run in group))]
        lines.append(f"| {rule} | {way} | {', '.join(str(run['config']['seed']) for run in group)} | "
                     f"{' / '.join(str(r) if r is not None else '-' for r in reached)} | {mean} | "
                     f"{' → '.join(f'{w:.1%}' for w in per_round)} |")
    return "\n".join(lines)


# Command line ------------------------------------------------------------------------

TINY_BASE = BaseModelConfig(n_layer=2, n_head=2, n_embd=64, examples=4000, steps=60, batch_size=16)


def parse_setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_crowd(text: str) -> dict[str, int]:
    crowd = {}
    for part in text.split(","):
        profile, _, count = part.partition("=")
        if profile.strip() not in PROFILES or not count.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected PROFILE=N with PROFILE one of {', '.join(PROFILES)}: {part!r}")
        crowd[profile.strip()] = int(count)
    return crowd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", choices=sorted(RULES), default="positive")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ratings", type=int, default=500, help="ratings per round")
    parser.add_argument("--noise", type=float, default=0.1, help="share of a careful rater's answers flipped")
    parser.add_argument("--crowd", type=parse_crowd, default={"careful": 1}, metavar="PROFILE=N,...",
                        help=f"simulated raters by profile ({', '.join(PROFILES)}), e.g. careful=6,random=3,"
                             "adversarial=1")
    parser.add_argument("--overlap", type=int, default=1, help="raters who answer each item")
    parser.add_argument("--selection", choices=("random", "uncertainty", "contrast"), default="random",
                        help="how the pool draws training pairs (active selection: uncertainty, contrast)")
    parser.add_argument("--thumbs", action="store_true",
                        help="thumbs alone: single responses rated up or down, no comparisons (use --algorithm ppo)")
    parser.add_argument("--random-share", type=float, default=0.25,
                        help="with --selection uncertainty or contrast: share of pairs drawn at random anyway")
    parser.add_argument("--algorithm", choices=("dpo", "ppo"), default="dpo")
    parser.add_argument("--round", action="append", default=[], type=parse_setting, metavar="KEY=VALUE",
                        help="a RoundSettings field, e.g. policy_steps=60 (repeatable)")
    parser.add_argument("--database-url", help="an empty database (default: SQLite in the work directory)")
    parser.add_argument("--cache", type=Path, help="where the base model is built once and kept")
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary directory, removed)")
    parser.add_argument("--tiny", action="store_true", help="the tiny test model instead of the small base")
    parser.add_argument("--base", action="append", default=[], type=parse_setting, metavar="KEY=VALUE",
                        help="a BaseModelConfig field, e.g. steps=1200 (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--promotion", choices=("gates", "immediate"), default="gates",
                        help="gates: a result goes live when its gates pass; immediate: always")
    parser.add_argument("--threads", type=int, help="torch threads (default: one per core; 1 on busy shared cores)")
    parser.add_argument("--out", type=Path, help="the plot (default bench/results/loop-RULE.png); JSON beside it")
    parser.add_argument("--table", type=Path, nargs="+", metavar="JSON",
                        help="print a markdown table of earlier runs' JSON files and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0

    config = BenchConfig(rule=args.rule, rounds=args.rounds, ratings=args.ratings, noise=args.noise,
                         round_settings={"algorithm": args.algorithm} | dict(args.round), seed=args.seed,
                         base_model=replace(TINY_BASE if args.tiny else BaseModelConfig(), **dict(args.base)),
                         promotion=args.promotion, torch_threads=args.threads, crowd=args.crowd,
                         overlap=args.overlap, selection=args.selection, random_share=args.random_share,
                         thumbs=args.thumbs)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    out = args.out or RESULTS / f"loop-{args.rule}.png"
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tuneloop-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        print(f"torch threads: {args.threads or torch.get_num_threads()} of {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        print(HEADER, flush=True)
        results = run_benchmark(config, workdir, args.cache or workdir / "cache", args.database_url,
                                log=lambda line: print(line, flush=True))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - started
    print(summary(results, total))
    to_target = ratings_to_target(results, args.ratings)
    print(f"ratings to reach {WIN_RATE_TARGET:.0%}: {to_target if to_target is not None else 'not reached'}")
    title = (f"rule {args.rule!r}, {args.rounds} x {args.ratings} ratings, {args.noise:.0%} noise, "
             f"{config.round_settings}" + (", tiny base" if args.tiny else "")
             + (f", base {dict(args.base)}" if args.base else ""))
    plot(results, title, out)
    out.with_suffix(".json").write_text(json.dumps(
        {"command": " ".join(sys.argv), "config": asdict(config), "total_seconds": total,
         "load_average": os.getloadavg(), "ratings_to_target": to_target,
         "rounds": [asdict(r) | {"round_seconds": r.round_seconds} for r in results]}, indent=2, default=str))
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
