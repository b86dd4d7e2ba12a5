"""Phase 2: the preference store, pair sampling, scripted teacher and agreement statistics.

Modules: `store` (PreferenceStore: SQLite WAL, migrations in `schema`), `campaign` (CampaignConfig),
`labels` (label values and the weighted aggregate), `sampling` (uniform and active pair sampling),
`agreement` (pure statistics), `stats` (the dashboard's numbers), `teacher` (B-Pref scripted teacher
over HTTP; noise model in `teacher_model`), `export` (JSONL / parquet of `triples.PreferenceTriple`).
"""
