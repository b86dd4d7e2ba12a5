"""Phase 2b: the trajectory reward model (Bradley-Terry, ensembles)."""
