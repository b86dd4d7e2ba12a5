"""Image preprocessing and the small CNN image encoder.

The CNN sees the frame plus two coordinate channels (x, y in [-1, 1]; "CoordConv"), which makes
"where is the red cube" a cheap function for a few conv layers to compute, and every conv block is
FiLM-modulated by the instruction so its maps respond to the named object. Its last feature map is
pooled to side x side tokens, plus one token of spatial-softmax keypoints, for the fusion transformer.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def resize_frames(images: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) or (T, H, W, 3) uint8 -> same rank at (size, size), area interpolation, uint8."""
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        if images.shape[:2] == (size, size):
            return images
        return cv2.resize(images, (size, size), interpolation=cv2.INTER_AREA)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (H, W, 3) or (T, H, W, 3), got {images.shape}")
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])


def frames_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images))
    if t.ndim == 3:
        t = t.unsqueeze(0)
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image of (B, C, H, W) by up to `pad` pixels (replicate padding + random crop)."""
    if pad <= 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device="cpu").tolist()
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device="cpu").tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


class ImageEncoder(nn.Module):
    """(B, 3, S, S) float in [0, 1], instruction condition (B, d_model) -> (B, side*side + 1, d_model).

    The extra token holds spatial-softmax keypoints of the last feature map, or of every block's map
    with `multiscale_keypoints` (the expected x, y of each channel's activation): a precise, cheap
    "where" signal, as in visuomotor BC policies.
    """

    def __init__(
        self,
        image_size: int,
        channels: tuple[int, ...],
        tokens_side: int,
        d_model: int,
        stem_stride: int = 2,
        group_norm: bool = True,
        multiscale_keypoints: bool = False,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        layers: list[nn.Module] = []
        c_in = 3 + 2  # RGB + coordinate channels
        self.blocks = nn.ModuleList()
        self.films = nn.ModuleList()
        for i, c_out in enumerate(channels):
            if i == 0 and stem_stride != 2:
                # Patchify stem: non-overlapping stem_stride x stem_stride patches (cheap on CPU).
                layers = [nn.Conv2d(c_in, c_out, stem_stride, stride=stem_stride)]
            else:
                k = 5 if i == 0 else 3
                layers = [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2)]
            if group_norm:
                layers.append(nn.GroupNorm(8 if c_out % 8 == 0 else 1, c_out))
            self.blocks.append(nn.Sequential(*layers))
            # FiLM (as in RT-1): the instruction scales and shifts every channel, so the maps (and
            # the keypoints read from them) pick out the object the instruction names. Zero init:
            # training starts from the unconditioned CNN.
            film = nn.Linear(d_model, 2 * c_out)
            nn.init.zeros_(film.weight)
            nn.init.zeros_(film.bias)
            self.films.append(film)
            c_in = c_out
        self.pool = nn.AdaptiveAvgPool2d(tokens_side)
        self.proj = nn.Linear(c_in, d_model)
        # Keypoints of the last map only, or of every block's map. The last map is coarse (6 x 6 at
        # 96 px: one cell is 16 px, about 15 cm of table), so a soft-argmax over it places a 5 px cube
        # only as well as its channels can interpolate; the earlier maps are 2x and 4x finer.
        self.keypoint_levels = tuple(range(len(channels))) if multiscale_keypoints else (len(channels) - 1,)
        self.keypoint_proj = nn.Linear(sum(2 * channels[i] for i in self.keypoint_levels), d_model)
        self.pos = nn.Parameter(torch.randn(tokens_side * tokens_side + 1, d_model) * 0.02)
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, image_size), torch.linspace(-1, 1, image_size), indexing="ij"
        )
        self.register_buffer("coords", torch.stack([xs, ys]).unsqueeze(0), persistent=False)
        for level in self.keypoint_levels:
            side = image_size // (stem_stride * 2**level)
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
            coords = torch.stack([xs.flatten(), ys.flatten()], 1)
            self.register_buffer(f"map_coords_{level}", coords, persistent=False)

    def feature_maps(self, images: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 3, S, S), condition (B, d_model) -> (last map (B, C, h, w), keypoints (B, K)).

        The keypoints are each keypoint level's channels' expected (x, y) in [-1, 1] (x right, y down),
        level by level, channel by channel: (x0, y0, x1, y1, ...)."""
        b, c, h, w = images.shape
        if c != 3 or h != self.image_size or w != self.image_size:
            raise ValueError(f"ImageEncoder expects (B, 3, {self.image_size}, {self.image_size}), got {tuple(images.shape)}")
        x = torch.cat([images * 2.0 - 1.0, self.coords.expand(b, -1, -1, -1)], dim=1)
        keypoints = []
        for level, (block, film) in enumerate(zip(self.blocks, self.films, strict=True)):
            gamma, beta = film(condition).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
            x = F.gelu(block(x) * (1.0 + gamma) + beta)
            if level in self.keypoint_levels:
                attn = torch.softmax(x.flatten(2), dim=-1)  # (B, C, h*w)
                keypoints.append((attn @ getattr(self, f"map_coords_{level}")).flatten(1))
        return x, torch.cat(keypoints, 1)

    def forward(self, images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """images (B, 3, S, S), condition (B, d_model) (the projected instruction) -> tokens."""
        fmap, keypoints = self.feature_maps(images, condition)
        grid = self.pool(fmap).flatten(2).transpose(1, 2)  # (B, side*side, C)
        tokens = torch.cat([self.proj(grid), self.keypoint_proj(keypoints).unsqueeze(1)], dim=1)
        return tokens + self.pos
