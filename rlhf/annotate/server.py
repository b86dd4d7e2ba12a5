"""The annotation web server (FastAPI): the page, its JSON API, video streaming and the admin API.

Annotators reach the page by a token link `/annotate?token=...&campaign=...`; the page (and the
scripted teacher) talk to the same JSON API with the token as a Bearer header. Campaign management
needs the admin token. Videos (the scene camera's, and the wrist camera's where an episode has one)
are served with HTTP Range support so browsers can seek.

    app = create_app(PreferenceStore("prefs.sqlite"), admin_token="...")
    uvicorn.run(app, host="127.0.0.1", port=8600)
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from rlhf.annotate.episode_source import (
    VIDEO_ROUTE,
    WRIST_VIDEO_ROUTE,
    check_wrist_clock,
    served_video_url,
    served_wrist_video_url,
)
from rlhf.annotate.schemas import AnnotatorIn, CampaignIn, EpisodesIn, LabelIn, PairsIn
from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.campaign import CampaignConfig
from rlhf.prefs.export import triple_to_row
from rlhf.prefs.labels import LABEL_NAMES, display_to_label, label_to_display
from rlhf.prefs.sampling import SamplingConfig, sample_uniform_pairs, with_known_answers
from rlhf.prefs.stats import campaign_stats
from rlhf.prefs.store import Annotator, Conflict, EpisodeRecord, NotFound, PreferenceStore, StoreError

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8600


@dataclass(frozen=True)
class ServerConfig:
    """How `rlhf annotate serve` runs the app."""

    host: str = DEFAULT_HOST
    """Interface to bind; loopback by default so nothing outside this machine can reach the page."""
    port: int = DEFAULT_PORT
    """TCP port (0 lets the OS choose)."""
    public_url: str = ""
    """Base URL printed in token links; defaults to http://host:port."""

    def __post_init__(self) -> None:
        if not (0 <= self.port <= 65535):
            raise ValueError(f"ServerConfig.port must be in [0, 65535], got {self.port}")
        if not self.host:
            raise ValueError("ServerConfig.host must be non-empty")


def _page_url(url: str | None, route: str, served: str, token: str) -> str | None:
    """The URL the page's <video> loads: one served here carries the token (<video> cannot send
    headers); an external one is passed on as it is."""
    if url is None:
        return None
    return f"{served}?token={token}" if url.startswith(route) else url


def _token_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query_params.get("token")


def create_app(
    store: PreferenceStore,
    *,
    admin_token: str | None = None,
    video_root: str | os.PathLike | None = None,
    title: str = "RLHF annotation",
) -> FastAPI:
    """The annotation app over `store`.

    `admin_token` (or any annotator with role 'admin') may manage campaigns. With `video_root`, only
    video files under that folder are ever streamed, whatever path an episode row names.
    """
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    root = Path(video_root).resolve() if video_root is not None else None

    def user(request: Request) -> Annotator:
        token = _token_of(request)
        if token and admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
            return Annotator("admin", "admin")
        who = store.authenticate(token)
        if who is None:
            raise HTTPException(401, "missing or unknown token")
        return who

    def admin(who: Annotator = Depends(user)) -> Annotator:
        if who.role != "admin":
            raise HTTPException(403, "this needs the admin token")
        return who

    @app.exception_handler(StoreError)
    def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        code = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 422
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(ValueError)
    def _value_error(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    # ------------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/annotate")

    @app.get("/annotate", response_class=HTMLResponse)
    def annotate_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "annotate.html", media_type="text/html")

    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def stream(episode_id: str, path: str | None, what: str) -> FileResponse:
        if not path or not os.path.isfile(path):
            raise HTTPException(404, f"episode {episode_id!r} has no local {what} file")
        if root is not None and not Path(path).resolve().is_relative_to(root):
            raise HTTPException(403, f"episode {episode_id!r}: its {what} is outside the served video folder")
        # FileResponse answers Range requests with 206 Partial Content (browsers need it to seek).
        media_type = "video/webm" if path.endswith(".webm") else "video/mp4"
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})

    @app.get(VIDEO_ROUTE + "{episode_id}")
    def video(episode_id: str, who: Annotator = Depends(user)) -> FileResponse:
        return stream(episode_id, store.episode(episode_id).video_path, "video")

    @app.get(WRIST_VIDEO_ROUTE + "{episode_id}")
    def wrist_video(episode_id: str, who: Annotator = Depends(user)) -> FileResponse:
        return stream(episode_id, store.episode(episode_id).wrist_video_path, "wrist-camera video")

    # ------------------------------------------------------------------ annotator API
    @app.get("/api/me")
    def me(who: Annotator = Depends(user)) -> dict[str, Any]:
        return {"annotator_id": who.annotator_id, "role": who.role, "campaigns": store.campaigns()}

    @app.get("/api/campaigns/{campaign_id}/next")
    def next_item(campaign_id: str, request: Request, who: Annotator = Depends(user)) -> dict[str, Any]:
        cfg = store.campaign(campaign_id)
        nxt = store.next_item(campaign_id, who.annotator_id)
        out: dict[str, Any] = {
            "status": nxt.status,
            "phase": nxt.phase,
            "calibration": {"done": nxt.calibration_done, "total": nxt.calibration_total},
            "campaign": {"id": cfg.campaign_id, "name": cfg.name},
        }
        if nxt.assignment is None:
            return out
        pair = nxt.assignment.pair
        token = _token_of(request) or ""
        sides = {}
        for ep_id, seg, is_a in ((pair.episode_a, pair.segment_a, True), (pair.episode_b, pair.segment_b, False)):
            ep = store.episode(ep_id)
            side = "left" if is_a == pair.a_on_left else "right"
            sides[side] = {
                "episode_id": ep.episode_id,
                "video_url": _page_url(ep.video_url, VIDEO_ROUTE, served_video_url(ep.episode_id), token),
                # Same clock as video_url (one frame per step); null: the episode has no wrist camera.
                "wrist_video_url": _page_url(
                    ep.wrist_video_url, WRIST_VIDEO_ROUTE, served_wrist_video_url(ep.episode_id), token
                ),
                "fps": ep.fps,
                "start_step": seg[0],
                "stop_step": seg[1],
                "start_s": seg[0] / ep.fps,
                "stop_s": seg[1] / ep.fps,
            }
        ep_a = store.episode(pair.episode_a)
        out["item"] = {
            "item_id": nxt.assignment.assignment_id,
            "task": ep_a.task,
            "instruction": ep_a.instruction,
            "axes": list(PREFERENCE_AXES),
            "axis_weights": cfg.axis_weights,
            "left": sides["left"],
            "right": sides["right"],
            "expires_at": nxt.assignment.expires_at,
        }
        return out

    @app.post("/api/campaigns/{campaign_id}/labels")
    def post_label(campaign_id: str, body: LabelIn, who: Annotator = Depends(user)) -> dict[str, Any]:
        assignment, _ = store.assignment(body.item_id)
        if assignment.pair.campaign_id != campaign_id:
            raise HTTPException(404, f"item {body.item_id!r} is not in campaign {campaign_id!r}")
        a_left = assignment.pair.a_on_left
        axes = {axis: display_to_label(choice, a_left) for axis, choice in body.axes.items()}
        overall = display_to_label(body.overall, a_left) if body.overall is not None else None
        prob_a = None
        if body.prob_left is not None:
            if overall is None:
                raise HTTPException(422, "prob_left needs an explicit overall answer")
            prob_a = body.prob_left if a_left else 1.0 - body.prob_left
        result = store.submit_label(
            body.item_id,
            who.annotator_id,
            axes,
            overall=overall,
            prob_a=prob_a,
            marks=[m.model_dump() for m in body.marks],
            client_ms=body.client_ms,
        )
        out: dict[str, Any] = {"label_id": result.label.label_id, "label": LABEL_NAMES[result.label.label]}
        if result.feedback is not None:
            fb = result.feedback
            out["feedback"] = {
                "correct": fb["correct"],
                "expected_overall": label_to_display(fb["expected_label"], a_left),
                "expected_axes": {a: label_to_display(v, a_left) for a, v in (fb["expected_axes"] or {}).items()},
            }
            out["calibration"] = {"qualified": result.qualified, "accuracy": result.calibration_accuracy}
        return out

    # ------------------------------------------------------------------ admin API
    @app.post("/api/admin/annotators")
    def add_annotator(body: AnnotatorIn, request: Request, who: Annotator = Depends(admin)) -> dict[str, Any]:
        token = store.add_annotator(body.annotator_id, body.role, rotate=body.rotate)
        base = str(request.base_url).rstrip("/")
        links = {c: f"{base}/annotate?token={token}&campaign={c}" for c in store.campaigns()}
        return {"annotator_id": body.annotator_id, "role": body.role, "token": token, "links": links}

    @app.post("/api/admin/campaigns")
    def add_campaign(body: CampaignIn, who: Annotator = Depends(admin)) -> dict[str, Any]:
        data = body.model_dump()
        if data["axis_weights"] is None:
            data.pop("axis_weights")
        return store.create_campaign(CampaignConfig(**data)).to_dict()

    @app.get("/api/admin/campaigns")
    def list_campaigns(who: Annotator = Depends(admin)) -> list[dict[str, Any]]:
        return [dict(store.campaign(c).to_dict(), counts=store.counts(c)) for c in store.campaigns()]

    @app.post("/api/admin/episodes")
    def add_episodes(body: EpisodesIn, who: Annotator = Depends(admin)) -> dict[str, Any]:
        records = []
        for e in body.episodes:
            url = e.video_url or (served_video_url(e.episode_id) if e.video_path else None)
            if url is None:
                raise HTTPException(422, f"episode {e.episode_id!r} needs video_url or video_path")
            wrist_url = e.wrist_video_url or (served_wrist_video_url(e.episode_id) if e.wrist_video_path else None)
            check_wrist_clock(e.episode_id, e.video_path, e.wrist_video_path)  # ValueError -> 422, naming it
            records.append(
                EpisodeRecord(
                    episode_id=e.episode_id, task=e.task, instruction=e.instruction, video_url=url,
                    video_path=e.video_path, num_steps=e.num_steps, fps=e.fps, gold_axes=e.gold_axes,
                    wrist_video_url=wrist_url, wrist_video_path=e.wrist_video_path,
                )
            )
        return {"added": store.add_episodes(records, replace=body.replace)}

    @app.post("/api/admin/campaigns/{campaign_id}/pairs")
    def add_pairs(campaign_id: str, body: PairsIn, who: Annotator = Depends(admin)) -> dict[str, Any]:
        cfg = store.campaign(campaign_id)
        if (body.pairs is None) == (body.n is None):
            raise HTTPException(422, "give either 'pairs' or 'n'")
        if body.pairs is not None:
            specs = [p.model_dump() for p in body.pairs]
        else:
            episodes = store.episodes(body.task)
            rng = np.random.default_rng(body.seed)
            existing = {frozenset((p.episode_a, p.episode_b)) for p in store.pairs(campaign_id)}
            scfg = SamplingConfig(segment_steps=body.segment_steps, same_start=body.same_start)
            if body.kind == "work":
                specs = sample_uniform_pairs(episodes, body.n, rng, scfg, exclude=existing)
            else:
                with_gold = [e for e in episodes if e.gold_axes is not None]
                cands = sample_uniform_pairs(with_gold, body.n, rng, scfg, exclude=existing)
                specs = with_known_answers(cands, {e.episode_id: e for e in with_gold}, cfg.axis_weights, body.kind)
            specs = [dict(s, kind=body.kind) for s in specs]
        added = store.add_pairs(campaign_id, specs)
        return {"added": len(added), "pair_ids": [p.pair_id for p in added]}

    @app.get("/api/admin/campaigns/{campaign_id}/stats")
    def stats(campaign_id: str, who: Annotator = Depends(admin)) -> dict[str, Any]:
        return campaign_stats(store, campaign_id)

    @app.get("/api/admin/campaigns/{campaign_id}/export")
    def export(
        campaign_id: str, who: Annotator = Depends(admin), qualified_only: bool = Query(True)
    ) -> PlainTextResponse:
        import json

        rows = [triple_to_row(t) for t in store.triples(campaign_id, qualified_only=qualified_only)]
        body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        return PlainTextResponse(body, media_type="application/x-ndjson")

    return app
