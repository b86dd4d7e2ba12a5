"""Phase 3: PPO on the action head with a KL penalty to the BC reference, and DPO."""
