import pytest
import torch

from worker.training.advantages import gae


def test_gae_by_hand_with_padding_and_a_prompt_position():
    # gamma 0.9, lambda 0.5. Row 0: three response tokens then padding.
    #   t2: δ = 1 + 0.9·0 − 0.7 = 0.3                    A = 0.3
    #   t1: δ = 0 + 0.9·0.7 − 0.6 = 0.03                 A = 0.03 + 0.45·0.3 = 0.165
    #   t0: δ = 0 + 0.9·0.6 − 0.5 = 0.04                 A = 0.04 + 0.45·0.165 = 0.11425
    #   returns = A + V = [0.61425, 0.765, 1.0]
    # Row 1: a masked position, one response token, padding.
    #   t1: δ = 2 − 0.5 = 1.5, A = 1.5, return 2.0; values/rewards under the mask are ignored.
    rewards = torch.tensor([[0.0, 0.0, 1.0, 5.0], [3.0, 2.0, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.7, 9.0], [9.0, 0.5, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 0, 0]])
    advantages, returns = gae(rewards, values, mask, gamma=0.9, lam=0.5)
    assert advantages.tolist() == [pytest.approx([0.11425, 0.165, 0.3, 0.0]), pytest.approx([0.0, 1.5, 0.0, 0.0])]
    assert returns.tolist() == [pytest.approx([0.61425, 0.765, 1.0, 0.0]), pytest.approx([0.0, 2.0, 0.0, 0.0])]


def test_gae_with_lambda_one_is_the_discounted_return_minus_value():
    # gamma 1, lambda 1: A_t = (sum of future rewards) − V_t = 1 − V_t.
    advantages, returns = gae(
        torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.2, 0.4, 0.6]]), torch.ones(1, 3), gamma=1.0, lam=1.0
    )
    assert advantages[0].tolist() == pytest.approx([0.8, 0.6, 0.4])
    assert returns[0].tolist() == pytest.approx([1.0, 1.0, 1.0])
