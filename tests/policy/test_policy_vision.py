"""The policy's image encoder: where its spatial-softmax keypoints point."""

from __future__ import annotations

import pytest
import torch

from rlhf.policy.config import PolicyConfig
from rlhf.policy.vision import ImageEncoder

SIZE, STEM, CHANNELS = 32, 4, (8, 8, 8)  # maps of side 8, 4, 2


def red_channel_encoder(multiscale: bool) -> ImageEncoder:
    """An encoder whose first channel at every level is the red intensity, amplified."""
    torch.manual_seed(0)
    enc = ImageEncoder(SIZE, CHANNELS, 1, 16, stem_stride=STEM, group_norm=False, multiscale_keypoints=multiscale)
    with torch.no_grad():
        for i, block in enumerate(enc.blocks):
            conv = block[0]
            conv.weight.zero_()
            conv.bias.zero_()
            if i == 0:
                # Red (the encoder sees it in [-1, 1]) summed over the patch, shifted so that a black
                # patch gives 0 and the patch holding the blob 80.
                conv.weight[0, 0] = 40.0
                conv.bias[0] = 40.0 * STEM * STEM
            else:
                conv.weight[0, 0, conv.kernel_size[0] // 2, conv.kernel_size[1] // 2] = 1.0  # pass channel 0 on
    return enc


def blob(x: int, y: int) -> torch.Tensor:
    image = torch.zeros(1, 3, SIZE, SIZE)
    image[0, 0, y, x] = 1.0
    return image


@pytest.mark.parametrize("x,y", [(2, 29), (17, 6), (30, 13)])
def test_finest_keypoint_finds_a_one_pixel_blob_to_within_its_stem_cell(x, y):
    enc = red_channel_encoder(multiscale=True)
    _, keypoints = enc.feature_maps(blob(x, y), torch.zeros(1, 16))
    side = SIZE // STEM
    kx, ky = keypoints[0, :2].tolist()  # level 0, channel 0
    # The map's cell centres span [-1, 1]: the blob's cell is its pixel // STEM.
    expected = [2 * (x // STEM) / (side - 1) - 1, 2 * (y // STEM) / (side - 1) - 1]
    assert kx == pytest.approx(expected[0], abs=0.02)
    assert ky == pytest.approx(expected[1], abs=0.02)


def test_keypoint_levels_and_widths():
    coarse, fine = red_channel_encoder(False), red_channel_encoder(True)
    assert coarse.keypoint_levels == (2,) and fine.keypoint_levels == (0, 1, 2)
    images = blob(5, 5)
    assert coarse.feature_maps(images, torch.zeros(1, 16))[1].shape == (1, 2 * 8)
    assert fine.feature_maps(images, torch.zeros(1, 16))[1].shape == (1, 3 * 2 * 8)
    # The last level's keypoints are the same in both; the coarse one is the tail of the fine one.
    torch.testing.assert_close(
        fine.feature_maps(images, torch.zeros(1, 16))[1][:, -16:], coarse.feature_maps(images, torch.zeros(1, 16))[1]
    )


def test_multiscale_keypoints_are_off_by_default_and_for_older_checkpoints():
    assert PolicyConfig().multiscale_keypoints is False
    older = {k: v for k, v in PolicyConfig().to_dict().items() if k != "multiscale_keypoints"}
    assert PolicyConfig.from_dict(older).multiscale_keypoints is False
