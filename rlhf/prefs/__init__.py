"""Phase 2: the preference store, pair sampling, scripted teacher and agreement statistics."""
