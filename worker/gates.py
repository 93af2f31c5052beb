"""The gates a round's result must pass before it may go live, each with its value and limit.

- reward model (PPO): its accuracy on held-out human comparisons must be above
  chance with confidence: the lower end of its 95% Wilson interval above 50%.
  Trained on thumbs alone, its held-out thumbs must be called right more often
  than always answering the commoner thumb would, with the same confidence.
  A reward model at chance stops the round before any policy step, because
  PPO would only optimise its noise.
- KL to the parent on held-out prompts within the round's budget.
- degeneration against the parent's samples on the same prompts
  (worker.training.degeneration owns the limits; the watch stops training on them too).
- moved: the watch kept a step after the parent's; otherwise nothing within
  the limits was learned and there is nothing to publish.
"""

from dataclasses import asdict, dataclass

from app.checkpoints.win_rate import wilson_interval
from worker.training.degeneration import SampleStats, against_parent


@dataclass(frozen=True)
class Gate:
    name: str
    value: float | None
    limit: str
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def reward_model_gate(metrics: dict[str, float]) -> Gate:
    """From a reward model's metrics: its held-out comparisons, or with none its held-out thumbs."""
    accuracy, decisive = metrics.get("eval_accuracy"), int(metrics.get("eval_decisive", 0))
    if not decisive or accuracy is None:
        if metrics.get("eval_thumbs"):
            return thumb_gate(metrics["eval_thumb_accuracy"], int(metrics["eval_thumbs"]),
                              metrics["eval_thumb_majority"])
        return Gate("reward_model_accuracy", None, "lower 95% bound > 0.5", False,
                    "no decisive held-out comparison to measure the reward model on; more ratings needed")
    correct = round(accuracy * decisive)
    low, high = wilson_interval(correct, decisive)
    return Gate("reward_model_accuracy", accuracy, "lower 95% bound > 0.5", low > 0.5,
                f"{correct} of {decisive} held-out comparisons right, 95% interval [{low:.2f}, {high:.2f}]")


def thumb_gate(accuracy: float, thumbs: int, majority: float) -> Gate:
    """A reward model from thumbs alone must beat always answering the commoner thumb."""
    correct = round(accuracy * thumbs)
    low, high = wilson_interval(correct, thumbs)
    return Gate("reward_model_thumb_accuracy", accuracy, f"lower 95% bound > {majority:.2f} (the commoner thumb)",
                low > majority, f"{correct} of {thumbs} held-out thumbs right, 95% interval [{low:.2f}, {high:.2f}]")


def kl_gate(kl: float, budget: float | None) -> Gate:
    return Gate("kl", kl, f"<= {budget:g} nats" if budget is not None else "no budget",
                budget is None or kl <= budget, "KL to the parent per response on held-out prompts")


def degeneration_gates(candidate: SampleStats, parent: SampleStats) -> list[Gate]:
    return [Gate(check.name, check.value, check.limit, check.passed, "samples on held-out prompts")
            for check in against_parent(candidate, parent)]


def moved_gate(kept_step: int, stopped: str) -> Gate:
    return Gate("kept_step", float(kept_step), "> 0", kept_step > 0,
                stopped or "training ran to its end")


def policy_gates(watch_report: dict) -> list[Gate]:
    """The gates on a trained policy, from what its watch reported."""
    return [
        moved_gate(watch_report["kept_step"], watch_report["stopped"]),
        kl_gate(watch_report["kl"], watch_report["kl_budget"]),
        *degeneration_gates(SampleStats(**watch_report["stats"]), SampleStats(**watch_report["parent_stats"])),
    ]
