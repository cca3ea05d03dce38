"""State-dict tensors: torch tensors when torch imports, numpy arrays otherwise.

Lifetime: a tensor stored unquantized (and whose rows stay in place) is a read-only view of the
mapped model file, not a copy. The mapping stays open as long as any such tensor (or numpy array)
is alive: each holds the file through its base object (``array.base``, or the numpy array a torch
tensor was made from), so the loader itself may be dropped. numpy views are marked read-only;
torch has no read-only tensors, so writing into a view in place (``t.add_(1)``) is not allowed: the
pages are mapped read-only and the process would fault. Ask for ``copy=True`` (or ``t.clone()``)
for tensors to modify. Quantized tensors are decoded to new float32 arrays, and llama q/k weights
read from GGUF are new arrays with their rows put back in Hugging Face's order.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np

from ._aero import ArgumentError, Source

logger = logging.getLogger("aero")

_DTYPE_ALIASES = {
    "float32": "float32", "fp32": "float32", "float": "float32", "f32": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16", "f16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float64": "float64", "fp64": "float64", "double": "float64", "f64": "float64",
}


def dtype_name(dtype: Any, allowed: tuple[str, ...] = ("float32", "float16", "bfloat16", "float64")) -> str | None:
    """'float32', 'float16', 'bfloat16' or 'float64' for a torch dtype, numpy dtype or name; None stays None."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        key = dtype.lower().removeprefix("torch.")
    else:
        text = str(dtype)  # torch.float16 -> "torch.float16"
        if text.startswith("torch."):
            key = text.removeprefix("torch.")
        else:
            try:
                key = np.dtype(dtype).name
            except TypeError:
                key = text
    name = _DTYPE_ALIASES.get(key)
    if name is None or name not in allowed:
        raise ArgumentError(f"unsupported dtype {dtype!r} (use one of {', '.join(allowed)})")
    return name


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _framework(framework: str | None):
    """The torch module for torch tensors, None for numpy arrays."""
    if framework is None:
        return torch_or_none()
    if framework in ("pt", "torch"):
        torch = torch_or_none()
        if torch is None:
            raise ArgumentError("framework='pt' needs torch, which does not import here")
        return torch
    if framework in ("np", "numpy"):
        return None
    raise ArgumentError(f"unknown framework {framework!r} (use 'pt' or 'np')")


def _bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    # A bfloat16 is the top half of a float32: exact.
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _to_numpy(array: np.ndarray, bf16: bool, target: str | None, copy: bool) -> np.ndarray:
    if target == "bfloat16":
        raise ArgumentError("numpy has no bfloat16: ask for float32 or float16, or install torch")
    if bf16:
        array = _bf16_to_f32(array)
    if target is not None and array.dtype.kind == "f" and array.dtype != np.dtype(target):
        array = array.astype(target)
    if copy and not array.flags.writeable:
        array = array.copy()
    return array


# torch (before 2.3) has no unsigned types past uint8: those arrays are widened.
_TORCH_WIDEN = {np.dtype(np.uint16): np.int32, np.dtype(np.uint32): np.int64, np.dtype(np.uint64): np.int64}


def _to_torch(torch, array: np.ndarray, bf16: bool, target: str | None, copy: bool):
    if array.dtype in _TORCH_WIDEN and not bf16:
        array = array.astype(_TORCH_WIDEN[array.dtype])
    with warnings.catch_warnings():
        # A read-only view stays shared on purpose (see the module's documentation).
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(array.view(np.int16) if bf16 else array)
    if bf16:
        tensor = tensor.view(torch.bfloat16)
    shared = not array.flags.writeable
    if target is not None and tensor.is_floating_point() and tensor.dtype != getattr(torch, target):
        tensor = tensor.to(getattr(torch, target))
        shared = False
    if copy and shared:
        tensor = tensor.clone()
    return tensor


def state_dict(
    source: Source,
    *,
    map_names: bool | None = None,
    target_dtype: Any = None,
    framework: str | None = None,
    copy: bool = False,
    threads: int = 0,
    verbose: bool = False,
) -> dict[str, Any]:
    """Every tensor of SOURCE as {name: tensor} (see load_state_dict)."""
    target = dtype_name(target_dtype)
    torch = _framework(framework)
    start = time.perf_counter()
    entries = source.state_dict(map_names, threads)
    if torch is None:
        result = {name: _to_numpy(array, bf16, target, copy) for name, array, bf16 in entries}
    else:
        result = {name: _to_torch(torch, array, bf16, target, copy) for name, array, bf16 in entries}
    if verbose:
        logger.info("loaded %d tensors from %s in %.2f s (%s)", len(result), source.path, time.perf_counter() - start,
                    "torch" if torch is not None else "numpy")
    return result
