"""The annotation web server and page.

`server.create_app(store, admin_token=...)` builds the FastAPI app; `static/` holds the page and the
dashboard (vanilla JS, no network); `episode_source` turns trajectories, rows or the episode store's
index into the store's EpisodeRecords; `commands` registers `rlhf annotate ...`.
"""
