"""Makes reward over-optimisation visible: the proxy reward rises while the gold metric falls,
or the policy runs away from the reference (KL blow-up).

Fed once per PPO iteration with the proxy return (what PPO optimises), the gold return (the sim's
ground truth, never seen by the learner) and the KL to the reference. It never stops training by
itself; the trainer logs its flags (`overopt/*`) and may stop early if asked to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class MonitorConfig:
    """Thresholds of the over-optimisation monitor."""

    window: int = 6
    """Iterations looked at when judging trends."""
    smooth: int = 2
    """Iterations averaged for the 'now' and 'peak' values (noise guard)."""
    min_gold_drop: float = 0.0
    """Gold must fall below its smoothed peak by more than this (gold units) ..."""
    rel_gold_drop: float = 0.1
    """... and by more than this fraction of max(|gold peak|, gold range so far): noise is no alarm."""
    min_proxy_gain: float = 0.0
    """Proxy must have risen by more than this since the gold peak."""
    max_corr: float = -0.3
    """Pearson correlation of proxy and gold over the window must be below this."""
    kl_limit: float = math.inf
    """Flag a KL blow-up when the per-episode KL exceeds this (nats)."""
    kl_growth: float = 10.0
    """... or grows by more than this factor over the last window (judged after the first window) ..."""
    kl_floor: float = 1.0
    """... measured from at least this KL (nats per episode), so growth from ~0 at the start is no alarm."""

    def __post_init__(self) -> None:
        if self.window < 3:
            raise ValueError(f"MonitorConfig.window must be >= 3, got {self.window}")
        if not 1 <= self.smooth <= self.window:
            raise ValueError(f"MonitorConfig.smooth must be in [1, window], got {self.smooth}")
        for name in ("min_gold_drop", "rel_gold_drop", "min_proxy_gain"):
            if getattr(self, name) < 0:
                raise ValueError(f"MonitorConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not -1.0 <= self.max_corr <= 1.0:
            raise ValueError(f"MonitorConfig.max_corr must be in [-1, 1], got {self.max_corr}")
        if self.kl_floor <= 0:
            raise ValueError(f"MonitorConfig.kl_floor must be > 0, got {self.kl_floor}")
        if self.kl_limit <= 0 or self.kl_growth <= 1:
            raise ValueError(f"MonitorConfig.kl_limit must be > 0 and kl_growth > 1, got {self.kl_limit}, {self.kl_growth}")


@dataclass
class OverOptimizationMonitor:
    """Keeps the (proxy, gold, kl) history and says whether over-optimisation shows."""

    config: MonitorConfig = field(default_factory=MonitorConfig)
    proxy: list[float] = field(default_factory=list)
    gold: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    flagged_at: int | None = None
    """First iteration (0-based) at which any flag was raised."""

    def update(self, proxy: float, gold: float, kl: float) -> dict[str, float]:
        """Record one iteration; return `overopt/*` metrics (flags as 0/1)."""
        self.proxy.append(float(proxy))
        self.gold.append(float(gold))
        self.kl.append(float(kl))
        div = self._divergence()
        blow = self._kl_blowup()
        if (div or blow) and self.flagged_at is None:
            self.flagged_at = len(self.proxy) - 1
        return {
            "overopt/proxy_up_gold_down": float(div),
            "overopt/kl_blowup": float(blow),
            "overopt/flag": float(div or blow),
            "overopt/gold_drop_from_peak": self.gold_drop(),
        }

    @property
    def flagged(self) -> bool:
        return self.flagged_at is not None

    def reasons(self) -> list[str]:
        """Human-readable reasons the current iteration is flagged."""
        out = []
        if self._divergence():
            out.append("proxy reward rising while gold falls")
        if self._kl_blowup():
            out.append(f"KL to the reference blew up ({self.kl[-1]:.3g} nats per episode)")
        return out

    # ------------------------------------------------------------------ tests
    def _smoothed(self, xs: list[float]) -> np.ndarray:
        k = self.config.smooth
        a = np.asarray(xs, dtype=np.float64)
        return np.convolve(a, np.ones(k) / k, mode="valid")  # index i covers [i, i + k)

    def gold_drop(self) -> float:
        if len(self.gold) < self.config.smooth:
            return 0.0
        g = self._smoothed(self.gold)
        return float(g.max() - g[-1])

    def _divergence(self) -> bool:
        c = self.config
        if len(self.proxy) < c.window:
            return False
        g, p = self._smoothed(self.gold), self._smoothed(self.proxy)
        peak = int(np.argmax(g))
        if peak == len(g) - 1:
            return False
        drop = g[peak] - g[-1]
        scale = max(abs(float(g[peak])), float(np.ptp(self.gold)))
        if drop <= c.min_gold_drop or drop <= c.rel_gold_drop * scale:
            return False
        if p[-1] - p[peak] <= c.min_proxy_gain:
            return False
        wp = np.asarray(self.proxy[-c.window:])
        wg = np.asarray(self.gold[-c.window:])
        if wp.std() < 1e-12 or wg.std() < 1e-12:
            return False
        corr = float(np.corrcoef(wp, wg)[0, 1])
        return corr < c.max_corr

    def _kl_blowup(self) -> bool:
        c = self.config
        if not self.kl:
            return False
        if self.kl[-1] > c.kl_limit:
            return True
        # Growth is judged only after a first window: KL starts at exactly 0 (policy == reference),
        # so any early rise would otherwise look like a blow-up.
        if len(self.kl) < 2 * c.window:
            return False
        start = max(self.kl[-c.window], c.kl_floor)
        return self.kl[-1] / start > c.kl_growth

    def state_dict(self) -> dict:
        return {"proxy": self.proxy, "gold": self.gold, "kl": self.kl, "flagged_at": self.flagged_at}

    def load_state_dict(self, state: dict) -> None:
        self.proxy = [float(x) for x in state["proxy"]]
        self.gold = [float(x) for x in state["gold"]]
        self.kl = [float(x) for x in state["kl"]]
        self.flagged_at = state["flagged_at"]
