"""Watch a policy while it trains, and stop it before it breaks.

Every `every` steps the watch samples the policy on held-out prompts (the same
prompts and seed each time, so checks compare like with like) and measures:

- the KL to the parent, KL(policy || parent): the mean over those samples of
  sum_t log pi(y_t) - log pi_parent(y_t), in nats per response, at the
  sampling temperature. This is the quantity the KL penalty of PPO and DPO's
  beta hold back, measured on fresh samples rather than on training data;
- degeneration against the parent's samples on the same prompts
  (worker.training.degeneration: loops, sameness across prompts, collapsed length);
- optionally whether the algorithm's own held-out signal is worse than
  chance (DPO: its implicit reward orders held-out human pairs worse than no
  preference at all, by `worse_than_chance`: a sign test, so that a handful of
  held-out pairs, mostly noise, cannot stop a round).

A check that passes snapshots the trainable weights. The watch stops training
when the KL exceeds its budget or degeneration goes beyond the parent's, at
once, or when the held-out signal was worse than chance for `patience`
checks in a row (one such check can be noise); the policy then goes back to
the last snapshot. It does not stop merely because a held-out figure stopped
improving: on rated pairs as noisy as people's, DPO's held-out accuracy stays
within a few points of 55% while the policy keeps learning what raters want
(bench/README.md, "Safe rounds"). The parent itself (step 0) is the first
snapshot: a policy that breaks before its first good check is the parent, and
`kept.step == 0` says so (the algorithms then save nothing).

With a policy sharded across processes (FSDP, worker.training.distributed) every
rank runs the watch, as each of its forward passes is a collective; they take rank
0's verdict of each check (`agree`), and each keeps a snapshot of its own shard.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from worker.training.degeneration import SampleStats, against_parent, sample_stats
from worker.training.distributed import local_part
from worker.training.generation import generate_responses
from worker.training.logprobs import token_logprobs
from worker.training.sequences import Prompt, pad_prompt_response


def worse_than_chance(correct: int, decisive: int, alpha: float = 0.05) -> bool:
    """Whether `correct` of `decisive` comparisons ordered right shows an ordering worse than a coin's:
    the one-sided sign test's p-value, P(at most `correct` right | chance), below `alpha`.
    Six of six wrong is (p = 0.016); two of six is not (p = 0.34), whatever its point estimate says."""
    if decisive <= 0:
        return False
    return sum(math.comb(decisive, k) for k in range(correct + 1)) / 2**decisive < alpha


@dataclass
class WatchConfig:
    prompts: list[Prompt] = field(default_factory=list)  # held out from training
    samples_per_prompt: int = 2
    every: int = 5  # optimiser steps (PPO: iterations) between checks
    kl_budget: float | None = 15.0  # nats per response; None: no limit
    patience: int = 2  # checks in a row with the held-out signal worse than chance
    max_new_tokens: int = 40
    temperature: float = 1.0
    seed: int = 0


@dataclass
class Probe:
    """One check: what the policy's samples on the held-out prompts look like."""

    step: int
    kl: float
    stats: SampleStats
    failures: list[str]  # names of the limits it broke
    texts: list[str]
    details: dict[str, float] = field(default_factory=dict)  # the algorithm's own held-out figures

    def metrics(self) -> dict[str, float]:
        return self.details | {"heldout_kl": self.kl, "heldout_degenerate": self.stats.degenerate,
                               "heldout_distinct_2": self.stats.distinct_2, "heldout_words": self.stats.mean_words,
                               "heldout_unfinished": self.stats.unfinished}


class PolicyWatch:
    """Checks a training policy against its parent; keeps and restores the last good weights.

    `reference_logprobs(input_ids, attention_mask)` gives the parent's per-token
    log-probs (B, T-1) at the watch's temperature: a frozen copy's, or the policy's
    with its LoRA adapter switched off. `agree(failures)`: the failures every rank acts
    on (`Ranks.agree`).
    """

    def __init__(self, config: WatchConfig, tokenizer: PreTrainedTokenizerBase, policy: torch.nn.Module,
                 reference_logprobs: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 agree: Callable[[Any], Any] = lambda failures: failures):
        if not config.prompts:
            raise ValueError("the watch needs held-out prompts")
        self.config = config
        self.tokenizer = tokenizer
        self.reference_logprobs = reference_logprobs
        self.agree = agree
        self.parent_texts, parent_ended, _ = self._sample(policy)  # the policy has not moved yet
        self.parent = sample_stats(self.parent_texts, parent_ended)
        self.kept = Probe(0, 0.0, self.parent, [], self.parent_texts)
        self.last = self.kept
        self.stop_reason = ""
        self._snapshot = self._copy(policy)
        self._worse_than_chance = 0
        self.checks = 0

    def due(self, step: int) -> bool:
        return step % self.config.every == 0

    @torch.no_grad()
    def check(self, step: int, policy: torch.nn.Module, worse_than_chance: bool = False,
              details: dict[str, float] | None = None) -> Probe:
        """Measure the policy now; snapshot it when every check passes."""
        self.checks += 1
        texts, ended, kl = self._sample(policy)
        stats = sample_stats(texts, ended)
        failures = [c.name for c in against_parent(stats, self.parent) if not c.passed]
        if self.config.kl_budget is not None and kl > self.config.kl_budget:
            failures.append("kl")
        if worse_than_chance:
            failures.append("heldout")
        failures = self.agree(failures)
        self._worse_than_chance = self._worse_than_chance + 1 if "heldout" in failures else 0
        probe = Probe(step, kl, stats, failures, texts, details or {})
        self.last = probe
        if not failures:
            self.kept, self._snapshot = probe, self._copy(policy)
        elif failures != ["heldout"] or self._worse_than_chance >= self.config.patience:
            self.stop_reason = (f"{', '.join(failures)} beyond the limit at step {step}; "
                                f"kept step {self.kept.step}")
        return probe

    @property
    def should_stop(self) -> bool:
        return bool(self.stop_reason)

    def restore(self, policy: torch.nn.Module) -> None:
        """Put the kept weights back (a no-op when the last check is the kept one)."""
        if self.last is self.kept:
            return
        parameters = dict(policy.named_parameters())
        with torch.no_grad():
            for name, value in self._snapshot.items():
                local_part(parameters[name]).copy_(value)

    def report(self, samples: int = 8) -> dict:
        """What the watch saw, for the round: checks, the kept step and why training stopped,
        the kept policy's figures against the parent's, and samples of both side by side."""
        return {"checks": self.checks, "kept_step": self.kept.step, "stopped": self.stop_reason,
                "kl": self.kept.kl, "kl_budget": self.config.kl_budget, "stats": self.kept.stats.as_dict(),
                "parent_stats": self.parent.as_dict(), "heldout": self.kept.details,
                "samples": [{"prompt": prompt, "parent": parent, "candidate": kept} for prompt, parent, kept
                            in zip(self.config.prompts[:samples], self.parent_texts, self.kept.texts)]}

    def _sample(self, policy: torch.nn.Module) -> tuple[list[str], list[bool], float]:
        """The policy's responses to the held-out prompts, whether each ended, and their mean KL
        to the parent."""
        config = self.config
        prompts = config.prompts * config.samples_per_prompt
        generated = generate_responses(policy, self.tokenizer, prompts, max_new_tokens=config.max_new_tokens,
                                       temperature=config.temperature, batch_size=64,
                                       seed=config.seed)
        input_ids, attention_mask, response_mask = pad_prompt_response(
            [g.prompt_ids for g in generated], [g.token_ids for g in generated], self.tokenizer.pad_token_id)
        device = next(policy.parameters()).device
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        mask = response_mask[:, 1:].to(device).float()  # (B, T-1): the sampled response tokens
        policy_logprobs, _ = token_logprobs(policy, input_ids, attention_mask, config.temperature)
        parent_logprobs = self.reference_logprobs(input_ids, attention_mask)
        kl = ((policy_logprobs.float() - parent_logprobs.float()) * mask).sum(-1).mean().item()
        return [g.text for g in generated], [g.ended_with_eos for g in generated], kl

    @staticmethod
    def _copy(policy: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The trainable weights on the CPU: this rank's shards of a sharded policy."""
        return {name: local_part(p.detach()).to("cpu", copy=True) for name, p in policy.named_parameters()
                if p.requires_grad}
