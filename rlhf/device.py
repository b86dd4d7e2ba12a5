"""The torch device a config's `device` field names: "cpu", "cuda" or "auto" (cuda when there is one).

torch is imported inside `resolve_device`, so configs can validate their field without loading it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("cpu", "cuda", "auto")


class DeviceUnavailableError(RuntimeError):
    """A config asked for "cuda" on a machine where torch sees no CUDA device."""


def resolve_device(name: str, what: str = "--device") -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' without a GPU is an error naming `what` (the flag or
    config field that asked for it)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"{what} is 'cuda' but torch sees no CUDA device (no GPU, or a CPU-only torch build)")
    return torch.device(name)
