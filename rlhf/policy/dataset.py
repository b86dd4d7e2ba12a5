"""Behavioural-cloning samples from trajectories, held in memory as compact tensors.

Frames are resized once to the policy's image size and kept as uint8, so a minibatch is a gather
plus a divide; the instruction of every step is an index into a small embedding table (one row per
distinct instruction, from the frozen encoder's cache).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rlhf.constants import ACTION, ACTION_IS_PAD, OBS_IMAGE, OBS_INSTRUCTION_EMB, OBS_STATE
from rlhf.policy.instruction_encoder import InstructionEncoder
from rlhf.policy.normalizer import state_from_trajectory
from rlhf.policy.vision import random_shift, resize_frames
from rlhf.trajectory import Trajectory

AUX_OBJECT_OFFSETS = "aux.object_offsets"
"""BC-only batch key: (B, K*3) task objects' positions minus the grasp point's, m (sim demos only)."""


class BCDataset:
    """All steps of `trajectories`. N = total steps.

    images (N, 3, S, S) uint8, states (N, 15), actions (N, 8), chunk_index (N, C) long (the next C
    step indices, clamped to the episode's last step), chunk_pad (N, C) bool, instruction_index (N,),
    embeddings (U, E). aux_targets (N, K*3) or None: object positions relative to the grasp point,
    present when every demo records `ee_positions` and `object_positions` with the same K.
    """

    def __init__(
        self,
        trajectories: Sequence[Trajectory],
        image_size: int,
        chunk_size: int,
        encoder: InstructionEncoder,
    ) -> None:
        if not trajectories:
            raise ValueError("BCDataset needs at least one trajectory")
        empty = [t.episode_id for t in trajectories if len(t) == 0]
        if empty:
            raise ValueError(f"BCDataset: trajectories with no steps: {empty[:5]}")
        instructions = sorted({t.instruction for t in trajectories})
        self.instructions = instructions
        self.embeddings = torch.from_numpy(encoder.encode(instructions))  # (U, E)
        lookup = {s: i for i, s in enumerate(instructions)}
        states, actions, chunk_index, chunk_pad, instr, aux = [], [], [], [], [], []
        ks = {None if t.object_positions is None or t.ee_positions is None else t.object_positions.shape[1]
              for t in trajectories}  # fmt: skip
        with_aux = len(ks) == 1 and None not in ks
        offset = 0
        offsets = np.arange(chunk_size)
        # Frames go straight into one preallocated channel-first array. A list, its concatenation and
        # a transposed copy held them several times over: building 1,990 pick-and-place demos at 96 px
        # peaked at 14.1 GB RSS that way, 9.8 GB this way (bench/results/policy.md, stop 18).
        self.images = torch.empty((sum(len(t) for t in trajectories), 3, image_size, image_size), dtype=torch.uint8)
        for t in trajectories:
            n = len(t)
            self.images[offset : offset + n] = torch.from_numpy(resize_frames(t.images, image_size)).permute(0, 3, 1, 2)
            states.append(state_from_trajectory(t))
            actions.append(t.actions.astype(np.float32))
            idx = np.arange(n)[:, None] + offsets[None, :]  # (n, C)
            chunk_pad.append(idx >= n)
            chunk_index.append(np.minimum(idx, n - 1) + offset)
            instr.append(np.full(n, lookup[t.instruction], dtype=np.int64))
            if with_aux:
                aux.append((t.object_positions - t.ee_positions[:, None, :]).reshape(n, -1).astype(np.float32))
            offset += n
        self.states = torch.from_numpy(np.concatenate(states))
        self.actions = torch.from_numpy(np.concatenate(actions))
        self.chunk_index = torch.from_numpy(np.concatenate(chunk_index))
        self.chunk_pad = torch.from_numpy(np.concatenate(chunk_pad))
        self.instruction_index = torch.from_numpy(np.concatenate(instr))
        self.num_episodes = len(trajectories)
        self.aux_targets = torch.from_numpy(np.concatenate(aux)) if with_aux else None

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def batch(self, indices: torch.Tensor, shift: int = 0, generator: torch.Generator | None = None) -> dict:
        """Batch dict for step `indices` (B,): images (B, 3, S, S) in [0, 1], ACTION (B, C, 8)."""
        images = self.images[indices].float().div_(255.0)
        if shift > 0:
            images = random_shift(images, shift, generator)
        batch = {
            OBS_IMAGE: images,
            OBS_STATE: self.states[indices],
            OBS_INSTRUCTION_EMB: self.embeddings[self.instruction_index[indices]],
            ACTION: self.actions[self.chunk_index[indices]],
            ACTION_IS_PAD: self.chunk_pad[indices],
        }
        if self.aux_targets is not None:
            batch[AUX_OBJECT_OFFSETS] = self.aux_targets[indices]
        return batch

    def sample(self, batch_size: int, generator: torch.Generator, shift: int = 0) -> dict:
        idx = torch.randint(0, len(self), (batch_size,), generator=generator)
        return self.batch(idx, shift, generator)
