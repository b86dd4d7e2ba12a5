"""Exploration noise for PPO's rollouts: white, or correlated in time (AR(1), "coloured").

The arm's actions are joint-position deltas, so the gold metrics' jerk (the third derivative of the
end-effector path) is about the second difference of the actions. White Gaussian exploration noise
of std s adds 6 s^2 to that second difference's variance at every step: on reach, the rollouts'
mean squared jerk was 29-164 against about 8 for the mean action (bench/results/rl.md, stop 22).
The jerk that labels and returns then carry is mostly the noise's, and a policy that is smoother
in the mean barely shows in them.

AR(1) noise, e_t = rho e_{t-1} + sqrt(1 - rho^2) xi_t with e_0 = xi_0, has the same N(0, 1)
marginal at every step, but its second difference has variance 2 (1 - rho) (3 - rho) instead of 6
(rho 0.9: 14 times less). The action at step t is still mean + std * e_t with e_t ~ N(0, 1), so PPO
keeps scoring each action with the head's per-step Gaussian log-probability; it ignores the noise's
dependence on earlier steps, as PPO with coloured action noise does (Hollenstein et al., "Colored
Noise in PPO", AAAI 2024). The price: the noise's sum over an episode, the positional drift it
causes, has about (1 + rho) / (1 - rho) times the variance of white noise's (19 at rho 0.9).
"""

from __future__ import annotations

import math

import torch


def check_noise_correlation(rho: float) -> float:
    """`rho` as a float if it is a valid AR(1) coefficient, in [0, 1); else a ValueError naming it."""
    if not (math.isfinite(rho) and 0.0 <= rho < 1.0):
        raise ValueError(f"exploration noise correlation must be in [0, 1), got {rho}")
    return float(rho)


class CorrelatedNoise:
    """Unit-variance Gaussian noise for N envs × A action dims, AR(1) along each env's episode.

    `sample()` returns the next step's (N, A) noise. A fresh process (or one after `reset()`) draws
    e_0 = xi_0, its stationary distribution. With rho = 0 every sample is exactly
    `torch.randn(shape, generator=generator)`, so white noise is unchanged bit for bit.
    """

    def __init__(self, num_envs: int, dim: int, rho: float, generator: torch.Generator | None = None) -> None:
        check_noise_correlation(rho)
        if num_envs < 1 or dim < 1:
            raise ValueError(f"CorrelatedNoise needs num_envs and dim >= 1, got {num_envs} and {dim}")
        self.shape = (int(num_envs), int(dim))
        self.rho = float(rho)
        self.innovation = math.sqrt(1.0 - self.rho * self.rho)
        self.generator = generator
        self.state: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the past: the next sample starts every env's process afresh."""
        self.state = None

    def sample(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        xi = torch.randn(self.shape, generator=self.generator, dtype=dtype)
        if self.state is None or self.rho == 0.0:
            self.state = xi
        else:
            self.state = self.rho * self.state.to(dtype) + self.innovation * xi
        return self.state
