"""Phase 3: PPO on the action head with a KL penalty to the BC reference, iterative RLHF, and DPO.

Modules (each small, named for what it holds):

- `config`: PPOConfig, DPOConfig, LoopConfig
- `gae`: compute_gae (pure, explicit reversed loop)
- `losses`: ppo_clip_loss, value_loss, gaussian_kl / kl_penalty (closed form), dpo_loss (RPO's NLL term is in `dpo`)
- `kl_controller`: fixed and adaptive KL coefficients
- `critic`: the separate value network on frozen backbone features
- `policy_adapter`: what PPO/DPO need from a policy (RLPolicy) and VLAAdapter over VLAPolicy
- `exploration`: the rollouts' action noise, white or AR(1) in time (CorrelatedNoise)
- `rollouts`: VectorRolloutCollector (gymnasium vector envs), RayRolloutCollector (optional extra)
- `reward_shaping`: ensemble / gold per-step rewards, running normaliser, KL folded into the reward
- `overoptimization`: the proxy-up-gold-down / KL blow-up monitor
- `ppo`: PPOTrainer;  `dpo`: DPOTrainer;  `loop`: RLHFLoop
- `logging`: TensorBoard + CSV metrics and the proxy-vs-gold-vs-KL plot
- `experiment`: the acceptance experiment (run by `python bench/bench_rl.py --acceptance DIR`)
- `commands`: `rlhf ppo train`, `rlhf dpo train`, `rlhf rlhf loop`

Nothing here is imported eagerly, so `import rlhf.rl` stays cheap.
"""
