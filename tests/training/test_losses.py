"""Every loss against numbers worked out by hand (the arithmetic is in the comments)."""

import math

import pytest
import torch

from worker.training.losses import (
    bradley_terry_loss,
    dpo_loss,
    entropy_from_logits,
    kl_k1,
    kl_k3,
    masked_mean,
    masked_whiten,
    ppo_policy_loss,
    ppo_value_loss,
)


def test_masked_mean_ignores_padding():
    # (1 + 2 + 3) / 3; the 100 is padding.
    assert masked_mean(torch.tensor([1.0, 2.0, 3.0, 100.0]), torch.tensor([1, 1, 1, 0])).item() == 2.0


def test_masked_whiten_uses_only_masked_positions_and_zeroes_padding():
    # mean 2, variance (1 + 0 + 1) / 3 = 2/3, std 0.816497 → ±1 / 0.816497 = ±1.224745
    whitened = masked_whiten(torch.tensor([1.0, 2.0, 3.0, 100.0]), torch.tensor([1, 1, 1, 0]))
    assert whitened.tolist() == pytest.approx([-1.224745, 0.0, 1.224745, 0.0], abs=1e-5)


def test_bradley_terry_on_a_decided_pair_and_a_tie():
    # Decided, margin 2: -log σ(2) = log(1 + e^-2) = 0.126928.
    # Tie, margin 0: -(½ log σ(0) + ½ log σ(0)) = log 2 = 0.693147.
    # Mean: 0.410038.
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([False, True]))
    assert loss.item() == pytest.approx(0.410038, abs=1e-5)


def test_bradley_terry_tie_penalises_any_margin():
    # Tie, margin 2: ½(log(1 + e^-2) + log(1 + e^2)) = ½(0.126928 + 2.126928) = 1.126928.
    loss = bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([True]))
    assert loss.item() == pytest.approx(1.126928, abs=1e-5)


def test_bradley_terry_gradient_pushes_chosen_up():
    chosen = torch.tensor([0.0], requires_grad=True)
    bradley_terry_loss(chosen, torch.tensor([0.0]), torch.tensor([False])).backward()
    # d/dm -log σ(m) at m = 0 is -(1 - σ(0)) = -0.5.
    assert chosen.grad.item() == pytest.approx(-0.5)


def test_dpo_loss_and_implicit_rewards():
    # chosen reward 0.1 * (-10 - -11) = 0.1, rejected 0.1 * (-12 - -11) = -0.1, margin 0.2.
    # loss -log σ(0.2) = log(1 + e^-0.2) = 0.598139.
    losses, chosen, rejected = dpo_loss(
        torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]), torch.tensor([-11.0]), beta=0.1
    )
    assert losses.item() == pytest.approx(0.598139, abs=1e-5)
    assert chosen.item() == pytest.approx(0.1)
    assert rejected.item() == pytest.approx(-0.1)


def test_dpo_label_smoothing_mixes_in_the_flipped_label():
    # 0.9 * log(1 + e^-0.2) + 0.1 * log(1 + e^0.2) = 0.9 * 0.598139 + 0.1 * 0.798139 = 0.618139.
    losses, _, _ = dpo_loss(
        torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]), torch.tensor([-11.0]),
        beta=0.1, label_smoothing=0.1,
    )
    assert losses.item() == pytest.approx(0.618139, abs=1e-5)


def test_ppo_policy_loss_clips_only_where_it_helps():
    # clip 0.2; old log-probs 0, so ratio = exp(logprob).
    # ratio 1.5, A +1: max(-1.5, -1.2) = -1.2 (clipped)
    # ratio 0.5, A +1: max(-0.5, -0.8) = -0.5
    # ratio 1.1, A -1: max(1.1, 1.1)   =  1.1
    # 4th token is padding. Loss (-1.2 - 0.5 + 1.1) / 3 = -0.2; clip fraction 1/3.
    logprobs = torch.log(torch.tensor([1.5, 0.5, 1.1, 50.0]))
    loss, clip_fraction = ppo_policy_loss(
        logprobs, torch.zeros(4), torch.tensor([1.0, 1.0, -1.0, 7.0]), torch.tensor([1, 1, 1, 0]), clip_range=0.2
    )
    assert loss.item() == pytest.approx(-0.2, abs=1e-6)
    assert clip_fraction.item() == pytest.approx(1 / 3)


def test_ppo_value_loss_takes_the_worse_of_clipped_and_unclipped():
    # clip 0.2.
    # V 1.0, old 0.5, R 2.0: clipped V 0.7; errors 1.0 and 1.69 → 1.69 (clipped counts)
    # V 0.0, old 0.5, R 1.0: clipped V 0.3; errors 1.0 and 0.49 → 1.0
    # loss ½ * (1.69 + 1.0) / 2 = 0.6725; clip fraction ½.
    loss, clip_fraction = ppo_value_loss(
        torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]), torch.tensor([2.0, 1.0]), torch.tensor([1, 1]), 0.2
    )
    assert loss.item() == pytest.approx(0.6725, abs=1e-6)
    assert clip_fraction.item() == pytest.approx(0.5)


def test_kl_estimators():
    logprobs, reference = torch.tensor([-1.0, -2.0]), torch.tensor([-2.0, -1.0])
    # k1 = log p - log q = [1, -1]
    assert kl_k1(logprobs, reference).tolist() == pytest.approx([1.0, -1.0])
    # k3 = e^r - 1 - r with r = log q - log p = [-1, 1]: [e^-1 - 1 + 1, e - 1 - 1] = [0.367879, 0.718282]
    assert kl_k3(logprobs, reference).tolist() == pytest.approx([0.367879, 0.718282], abs=1e-6)


def test_entropy_of_uniform_and_certain_distributions():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])  # (1, 2, 4)
    # Uniform over 4: log 4 = 1.386294; one-hot: 0.
    assert entropy_from_logits(logits)[0].tolist() == pytest.approx([math.log(4), 0.0], abs=1e-6)


def test_weights_count_each_example_by_its_weight_and_zero_leaves_it_out():
    from worker.training.losses import weighted_mean

    values = torch.tensor([1.0, 3.0, 100.0])
    assert weighted_mean(values, torch.tensor([1.0, 1.0, 0.0])).item() == pytest.approx(2.0)
    assert weighted_mean(values, torch.tensor([0.5, 1.5, 0.0])).item() == pytest.approx(2.5)
    assert weighted_mean(values).item() == pytest.approx(104 / 3)
    assert weighted_mean(values, torch.zeros(3)).item() == 0.0
    chosen, rejected, tie = torch.tensor([2.0, -1.0]), torch.tensor([0.0, 1.0]), torch.tensor([False, False])
    assert bradley_terry_loss(chosen, rejected, tie, torch.tensor([1.0, 0.0])).item() == pytest.approx(
        bradley_terry_loss(chosen[:1], rejected[:1], tie[:1]).item())
