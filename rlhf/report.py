"""A self-contained HTML report: one file with its plots (PNG), videos (MP4) and configs inlined.

The demo writes one, and a user can mail it or open it offline: nothing is fetched from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf.atomic import atomic_write_text


@dataclass
class Section:
    """One titled part of the report; its blocks render in the order they were added."""

    title: str
    blocks: list[str] = field(default_factory=list)

    def text(self, paragraph: str) -> Section:
        self.blocks.append(f"<p>{html.escape(paragraph)}</p>")
        return self

    def figure(self, fig: Any, caption: str = "") -> Section:
        """Inline a matplotlib figure as a PNG (the figure is closed afterwards)."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        return self.image_png(buf.getvalue(), caption)

    def image_png(self, png: bytes, caption: str = "") -> Section:
        data = base64.b64encode(png).decode()
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">{cap}</figure>')
        return self

    def video(self, path: str | Path, caption: str = "") -> Section:
        """Inline an MP4/WebM file so the report plays it with no other file beside it."""
        path = Path(path)
        mime = "video/webm" if path.suffix == ".webm" else "video/mp4"
        data = base64.b64encode(path.read_bytes()).decode()
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(
            f'<figure><video controls loop muted playsinline src="data:{mime};base64,{data}"></video>{cap}</figure>'
        )
        return self

    def table(self, rows: list[dict[str, Any]], caption: str = "") -> Section:
        if not rows:
            return self.text("(no rows)")
        cols = list(rows[0])
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows
        )
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.blocks.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def json(self, obj: Any, summary: str) -> Section:
        text = json.dumps(obj, indent=2, sort_keys=True, default=str)
        self.blocks.append(f"<details><summary>{html.escape(summary)}</summary><pre>{html.escape(text)}</pre></details>")
        return self


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444} h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #bbb;padding:.3em .7em;text-align:right}
th{background:#f0f0f0} caption{font-weight:600;text-align:left;padding:.3em 0}
figure{margin:1em 0} img{max-width:100%} video{width:100%;max-width:640px;image-rendering:pixelated} figcaption{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.85em}
"""


def write_report(path: str | Path, title: str, summary: str, sections: list[Section]) -> Path:
    """Render the sections into one HTML file, written atomically."""
    toc = "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections))
    body = "".join(
        f'<h2 id="s{i}">{html.escape(s.title)}</h2>' + "".join(s.blocks) for i, s in enumerate(sections)
    )
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(summary)}</p><ol>{toc}</ol>{body}</body></html>"
    )
    path = Path(path)
    atomic_write_text(path, page)
    return path
