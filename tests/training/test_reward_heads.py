"""The reward-head ensemble that active selection uses: fitted heads agree where the ratings
settled the order, and disagree where the ratings say nothing."""

import torch

from worker.training.reward_heads import fit_heads, most_disputed_pair


def comparisons(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, 6): the better response has the larger feature 0; features 1..5 are noise."""
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, 6, generator=generator), torch.randn(n, 6, generator=generator)
    better = (a[:, 0] > b[:, 0])[:, None]
    return torch.where(better, a, b), torch.where(better, b, a)


def test_heads_learn_the_order_the_ratings_show():
    chosen, rejected = comparisons(400)
    heads = fit_heads(chosen, rejected, torch.ones(400), torch.ones(400), heads=5)
    test_chosen, test_rejected = comparisons(200, seed=1)
    agree = (heads.rewards(test_chosen) > heads.rewards(test_rejected)).float().mean(1)  # (E,)
    assert agree.min() > 0.95


def test_the_disputed_pair_differs_where_the_ratings_are_silent():
    chosen, rejected = comparisons(40)
    heads = fit_heads(chosen, rejected, torch.ones(40), torch.ones(40), heads=8)
    candidates = torch.zeros(4, 6)
    candidates[1, 0] = 3.0  # clearly better than candidate 0 by what was rated: settled
    candidates[2, 3] = 6.0  # differs from candidate 3 only in a feature no rating decided
    candidates[3, 3] = -6.0
    first, second, spread = most_disputed_pair(heads, candidates)
    assert {first, second} == {2, 3}
    assert spread > 0.05


def test_weights_and_ties_count():
    chosen, rejected = comparisons(400)
    # The same comparisons, every one a tie: no head can tell the order.
    tied = fit_heads(chosen, rejected, torch.full((400,), 0.5), torch.ones(400))
    assert tied.weight.abs().max() < 0.2
    # Weight zero on every comparison: nothing learned.
    ignored = fit_heads(chosen, rejected, torch.ones(400), torch.zeros(400))
    assert ignored.weight.abs().max() < 1e-3
