import pytest

from worker.training.kl_control import AdaptiveKLController, FixedKLController


def test_fixed_controller_never_moves():
    controller = FixedKLController(0.05)
    controller.update(observed_kl=100.0, n_samples=64)
    assert controller.coef == 0.05


def test_adaptive_controller_moves_towards_target_with_clipped_error():
    controller = AdaptiveKLController(coef=0.1, target=6.0, horizon=10_000)
    # KL 9 vs target 6: error +0.5, clipped to +0.2; 100 samples → × (1 + 0.2·100/10000) = × 1.002.
    controller.update(observed_kl=9.0, n_samples=100)
    assert controller.coef == pytest.approx(0.1002)
    # KL 5.4: error −0.1 → × (1 − 0.1·100/10000) = × 0.999.
    controller.update(observed_kl=5.4, n_samples=100)
    assert controller.coef == pytest.approx(0.1002 * 0.999)
