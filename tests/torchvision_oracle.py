"""torchvision's model builders as the oracle for the zoo's files of the same name.

torchvision 0.28.0 is installed without its dependencies (`pip install
--no-deps torchvision==0.28.0`, as `scripts/setup.sh --test` does). Its
compiled operators (NMS, RoIAlign, ...) are built for another torch and
fail to register their fake (meta) kernels on import; the model definitions
need none of them. So `torch.library.register_fake` is wrapped, here only,
to ignore a registration that fails, before torchvision is imported. Where
torch or torchvision is absent, the tests that ask for it are skipped.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import pytest

# Builders whose keyword arguments differ from their defaults: no auxiliary
# heads, and the input taken as given (the zoo files have no transform).
BUILD_ARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "transform_input": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "transform_input": False, "init_weights": True},
}


def _tolerant(register_fake):
    """register_fake, ignoring registrations that fail (as a decorator or called directly)."""

    @functools.wraps(register_fake)
    def wrapper(*args, **kwargs):
        try:
            decorate = register_fake(*args, **kwargs)
        except Exception:  # noqa: BLE001 - the operator library did not load; the models need none
            return lambda fn: fn
        if not callable(decorate) or not args or callable(args[-1]):
            return decorate

        def apply(fn):
            try:
                return decorate(fn)
            except Exception:  # noqa: BLE001 - as above
                return fn
        return apply

    return wrapper


@functools.lru_cache(maxsize=1)
def _models() -> ModuleType | None:
    try:
        import torch
    except ImportError:
        return None
    original = torch.library.register_fake
    torch.library.register_fake = _tolerant(original)
    try:
        import torchvision.models as models
    except ImportError:
        return None
    finally:
        torch.library.register_fake = original
    return models


def torchvision_models() -> ModuleType:
    """`torchvision.models`, or skip the test when torch or torchvision is absent."""
    models = _models()
    if models is None:
        pytest.skip("torchvision is not installed (scripts/setup.sh --test installs it)")
    return models


def build(name: str, seed: int = 0, device: str | None = None):
    """torchvision's `name` model, randomly initialised with `seed`, in eval mode
    (on the meta device: names and shapes only, no storage)."""
    import torch

    models = torchvision_models()
    torch.manual_seed(seed)
    builder = getattr(models, name)
    if device is None:
        return builder(**BUILD_ARGS.get(name, {})).eval()
    try:
        with torch.device(device):
            return builder(**BUILD_ARGS.get(name, {})).eval()
    except NotImplementedError:  # RegNet computes its widths with tensors, which meta ones cannot give
        torch.manual_seed(seed)
        return builder(**BUILD_ARGS.get(name, {})).eval()


def tensors(model) -> dict[str, tuple[int, ...]]:
    """Every state_dict entry but the batch norms' step counts, by name: its shape."""
    return {n: tuple(t.shape) for n, t in model.state_dict().items() if not n.endswith("num_batches_tracked")}


def macs(model, shape: tuple[int, ...]) -> int:
    """Multiply-adds of one image of `shape` through `model`: torch's own
    FLOP count (two per multiply-add, convolutions and matrix products) / 2."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, *shape, device=next(model.parameters()).device))
    return counter.get_total_flops() // 2
