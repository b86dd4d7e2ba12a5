"""Behavioural-cloning samples from trajectories, held in memory as compact tensors.

Frames stay uint8, in the trajectories' own arrays when they are already at the policy's image size
(`load_demos(image_size=...)` resizes while reading), so building the dataset copies no frame and a
minibatch is a gather plus a divide. The instruction of every step is an index into a small
embedding table (one row per distinct instruction, from the frozen encoder's cache).

Steps a trajectory lists in `extra["unimitated_steps"]` (a demonstrator's disturbances, see
`sim.demonstrators`) are never imitated: they are not sampled, and a chunk reaching one is padded
from there on, so the policy learns the corrections that follow a disturbance but not the
disturbance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rlhf.constants import ACTION, ACTION_IS_PAD, OBS_IMAGE, OBS_INSTRUCTION_EMB, OBS_STATE, OBS_WRIST_IMAGE
from rlhf.policy.instruction_encoder import InstructionEncoder
from rlhf.policy.normalizer import state_from_trajectory
from rlhf.policy.vision import random_shift, resize_frames
from rlhf.trajectory import Trajectory

AUX_OBJECT_OFFSETS = "aux.object_offsets"
"""BC-only batch key: (B, K*3) task objects' positions minus the grasp point's, m (sim demos only)."""


class BCDataset:
    """All steps of `trajectories`. N = total steps.

    frames(indices) -> (B, 3, S, S) uint8 (wrist=True: the wrist camera's, with `wrist_image_size`), states (N, 15), actions (N, 8), chunk_index (N, C) long (the next C
    step indices, clamped to the episode's last step), chunk_pad (N, C) bool (past the end, or an
    unimitated step), anchors (M,) long (the steps `sample` draws from), instruction_index (N,),
    embeddings (U, E). aux_targets (N, K*3) or None: object positions relative to the grasp point,
    present when every demo records `ee_positions` and `object_positions` with the same K.
    """

    def __init__(
        self,
        trajectories: Sequence[Trajectory],
        image_size: int,
        chunk_size: int,
        encoder: InstructionEncoder,
        wrist_image_size: int | None = None,
    ) -> None:
        if not trajectories:
            raise ValueError("BCDataset needs at least one trajectory")
        empty = [t.episode_id for t in trajectories if len(t) == 0]
        if empty:
            raise ValueError(f"BCDataset: trajectories with no steps: {empty[:5]}")
        if wrist_image_size is not None:
            blind = [t.episode_id for t in trajectories if t.wrist_images is None]
            if blind:
                raise ValueError(
                    f"BCDataset: the policy uses a wrist camera but {len(blind)} trajectories have no wrist_images "
                    f"(record demos with `rlhf demos --wrist-camera`), e.g. {blind[:3]}"
                )
        instructions = sorted({t.instruction for t in trajectories})
        self.instructions = instructions
        self.embeddings = torch.from_numpy(encoder.encode(instructions))  # (U, E)
        lookup = {s: i for i, s in enumerate(instructions)}
        states, actions, chunk_index, chunk_pad, instr, aux, anchors = [], [], [], [], [], [], []
        ks = {None if t.object_positions is None or t.ee_positions is None else t.object_positions.shape[1]
              for t in trajectories}  # fmt: skip
        with_aux = len(ks) == 1 and None not in ks
        offset = 0
        offsets = np.arange(chunk_size)
        # Each episode's frames are referenced, not copied (resize_frames returns the array itself at
        # the right size). A concatenated copy doubled the peak: 9.8 GB RSS for 1,990 pick-and-place
        # demos at 96 px, 14.1 GB before that with a list and a transposed copy (bench/results/policy.md).
        self._frames: list[np.ndarray] = []
        self._wrist_frames: list[np.ndarray] | None = [] if wrist_image_size is not None else None
        episode_of, step_of = [], []
        for e, t in enumerate(trajectories):
            n = len(t)
            self._frames.append(np.ascontiguousarray(resize_frames(t.images, image_size)))
            if self._wrist_frames is not None:
                self._wrist_frames.append(np.ascontiguousarray(resize_frames(t.wrist_images, wrist_image_size)))
            episode_of.append(np.full(n, e, dtype=np.int64))
            step_of.append(np.arange(n, dtype=np.int64))
            states.append(state_from_trajectory(t))
            actions.append(t.actions.astype(np.float32))
            idx = np.arange(n)[:, None] + offsets[None, :]  # (n, C)
            skip = np.zeros(n + chunk_size, dtype=bool)
            skip[n:] = True
            unimitated = np.asarray(t.extra.get("unimitated_steps", []), dtype=np.int64)
            if unimitated.size and (unimitated.min() < 0 or unimitated.max() >= n):
                raise ValueError(f"BCDataset: {t.episode_id}: unimitated_steps outside 0..{n - 1}")
            skip[unimitated] = True
            # A chunk ends at its first skipped step: what follows a disturbance corrects it, and is
            # not predictable from the observation before it.
            chunk_pad.append(np.logical_or.accumulate(skip[idx], axis=1))
            anchors.append(np.flatnonzero(~skip[:n]) + offset)
            chunk_index.append(np.minimum(idx, n - 1) + offset)
            instr.append(np.full(n, lookup[t.instruction], dtype=np.int64))
            if with_aux:
                aux.append((t.object_positions - t.ee_positions[:, None, :]).reshape(n, -1).astype(np.float32))
            offset += n
        self._episode_of = np.concatenate(episode_of)
        self._step_of = np.concatenate(step_of)
        self.states = torch.from_numpy(np.concatenate(states))
        self.actions = torch.from_numpy(np.concatenate(actions))
        self.chunk_index = torch.from_numpy(np.concatenate(chunk_index))
        self.chunk_pad = torch.from_numpy(np.concatenate(chunk_pad))
        self.instruction_index = torch.from_numpy(np.concatenate(instr))
        self.anchors = torch.from_numpy(np.concatenate(anchors))
        if len(self.anchors) == 0:
            raise ValueError("BCDataset: every step is unimitated; nothing to learn from")
        self.num_episodes = len(trajectories)
        self.aux_targets = torch.from_numpy(np.concatenate(aux)) if with_aux else None

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def frames(self, indices: torch.Tensor, wrist: bool = False) -> torch.Tensor:
        """(B, 3, S, S) uint8 frames of step `indices` (B,), of the wrist camera with `wrist`."""
        idx = indices.numpy()
        source = self._frames if not wrist else self._wrist_frames
        if source is None:
            raise ValueError("BCDataset.frames(wrist=True): this dataset holds no wrist frames (wrist_image_size=None)")
        stacked = np.stack([source[e][s] for e, s in zip(self._episode_of[idx], self._step_of[idx], strict=True)])
        # Channel-first in uint8, before the float conversion: converting a permuted view is slower.
        return torch.from_numpy(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2)))

    def batch(self, indices: torch.Tensor, shift: int = 0, generator: torch.Generator | None = None) -> dict:
        """Batch dict for step `indices` (B,): images (B, 3, S, S) in [0, 1], ACTION (B, C, 8)."""

        def camera(wrist: bool) -> torch.Tensor:
            images = self.frames(indices, wrist).float().div_(255.0)
            return random_shift(images, shift, generator) if shift > 0 else images

        batch = {
            OBS_IMAGE: camera(wrist=False),
            OBS_STATE: self.states[indices],
            OBS_INSTRUCTION_EMB: self.embeddings[self.instruction_index[indices]],
            ACTION: self.actions[self.chunk_index[indices]],
            ACTION_IS_PAD: self.chunk_pad[indices],
        }
        if self._wrist_frames is not None:
            batch[OBS_WRIST_IMAGE] = camera(wrist=True)
        if self.aux_targets is not None:
            batch[AUX_OBJECT_OFFSETS] = self.aux_targets[indices]
        return batch

    def sample(self, batch_size: int, generator: torch.Generator, shift: int = 0) -> dict:
        idx = self.anchors[torch.randint(0, len(self.anchors), (batch_size,), generator=generator)]
        return self.batch(idx, shift, generator)
