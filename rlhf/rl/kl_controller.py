"""The coefficient of the KL penalty: fixed, or adapted toward a target KL (Ziegler et al., 2019)."""

from __future__ import annotations

import numpy as np


class FixedKLController:
    """A constant coefficient."""

    def __init__(self, coef: float) -> None:
        if coef < 0:
            raise ValueError(f"KL coefficient must be >= 0, got {coef}")
        self.value = float(coef)

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value


class AdaptiveKLController:
    """Proportional control of the coefficient so the observed KL tracks `target`.

    e = clip(KL / target - 1, -0.2, 0.2);  coef <- coef * (1 + e * n_steps / horizon).
    """

    def __init__(self, init_coef: float, target: float, horizon: int) -> None:
        if init_coef <= 0 or target <= 0 or horizon <= 0:
            raise ValueError(
                f"adaptive KL needs init_coef > 0, target > 0, horizon > 0; got {init_coef}, {target}, {horizon}"
            )
        self.value = float(init_coef)
        self.target = float(target)
        self.horizon = int(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        error = float(np.clip(current_kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value


def make_kl_controller(mode: str, coef: float, target: float, horizon: int) -> FixedKLController | AdaptiveKLController:
    """'fixed' or 'adaptive' (see PPOConfig.kl_mode)."""
    if mode == "fixed":
        return FixedKLController(coef)
    if mode == "adaptive":
        return AdaptiveKLController(coef, target, horizon)
    raise ValueError(f"kl mode must be 'fixed' or 'adaptive', got {mode!r}")
