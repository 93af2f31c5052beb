"""How often does the raters' review (app.checkpoints.review) get its verdict wrong, and how soon?

Simulated comparisons of a candidate with the current checkpoint: each is a
tie with probability --ties, else a win for the candidate with probability p
(its true decisive win rate). The review's own `decide` looks after every
comparison, as the beat would, until a verdict or the cap. Looking again and
again makes a wrong verdict likelier than one test at 95% would be; this
prints how much likelier, for candidates worse, equal and better than the
current checkpoint.

    .venv/bin/python bench/review.py --trials 4000
"""

import argparse
import random
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.checkpoints.review import decide
from app.checkpoints.win_rate import HeadToHead


def simulate(p: float, ties: float, max_comparisons: int, trials: int, rng: random.Random) -> dict[str, float]:
    verdicts = {"promote": 0, "reject": 0}
    comparisons = []
    for _ in range(trials):
        record = HeadToHead()
        while True:
            record.games += 1
            if rng.random() < ties:
                record.ties += 1
                record.wins += 0.5
            elif rng.random() < p:
                record.wins += 1
            review = decide(record, max_comparisons)
            if review.decision:
                verdicts[review.decision] += 1
                comparisons.append(record.games)
                break
    comparisons.sort()
    return {"promoted": verdicts["promote"] / trials, "rejected": verdicts["reject"] / trials,
            "median comparisons": comparisons[len(comparisons) // 2]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4000)
    parser.add_argument("--ties", type=float, default=0.3, help="share of comparisons that are ties")
    parser.add_argument("--max-comparisons", type=int, default=200, help="TUNELOOP_REVIEW_MAX_COMPARISONS")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(f"{args.trials} trials each, {args.ties:.0%} ties, at most {args.max_comparisons} comparisons\n")
    print("| candidate's true decisive win rate | promoted | rejected | median comparisons to a verdict |")
    print("|---:|---:|---:|---:|")
    for p in (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8):
        result = simulate(p, args.ties, args.max_comparisons, args.trials, rng)
        print(f"| {p:.0%} | {result['promoted']:.1%} | {result['rejected']:.1%} | {result['median comparisons']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
