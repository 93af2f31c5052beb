"""Coefficients for the KL penalty that keeps the policy near its reference."""

from dataclasses import dataclass


@dataclass
class FixedKLController:
    coef: float

    def update(self, observed_kl: float, n_samples: int) -> None:
        """A fixed coefficient ignores what it observes."""


@dataclass
class AdaptiveKLController:
    """Ziegler et al. (2019): steer the observed KL towards `target`.

    The coefficient moves in proportion to the relative error, clipped to
    ±20% so a single noisy batch cannot swing it, and scaled by how many
    samples the batch held relative to `horizon`.
    """

    coef: float
    target: float
    horizon: int

    def update(self, observed_kl: float, n_samples: int) -> None:
        proportional_error = min(max(observed_kl / self.target - 1.0, -0.2), 0.2)
        self.coef *= 1.0 + proportional_error * n_samples / self.horizon
