"""Shared fixtures of the Python tests: the shared test material, the aero binary, small models.

ctest runs these with PYTHONPATH=build/python, AERO_BINARY and AERO_SHARED_DIR set (see
tests/CMakeLists.txt); run by hand as ``PYTHONPATH=build/python python3 -m pytest tests/python``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE_MODELS = ["llama", "llama-mha", "qwen2", "qwen3"]


@pytest.fixture(scope="session")
def shared() -> Path:
    path = Path(os.environ.get("AERO_SHARED_DIR", REPO.parent / "shared"))
    if not (path / "fixtures").is_dir():
        pytest.skip(f"shared fixtures not found at {path}")
    return path


@pytest.fixture(scope="session")
def aero_binary() -> Path:
    path = Path(os.environ.get("AERO_BINARY", REPO / "build/bin/aero"))
    if not path.is_file():
        pytest.skip(f"the aero binary is not built at {path} (AERO_BINARY names it)")
    return path


def run_aero(binary: Path, *args: str) -> None:
    r = subprocess.run([str(binary), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file read independently of aero: header, offsets, numpy arrays."""
    types = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I32": np.int32, "I64": np.int64,
             "BF16": np.uint16, "I8": np.int8, "U8": np.uint8, "I16": np.int16}
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        out[name] = np.frombuffer(body[begin:end], dtype=types[t["dtype"]]).reshape(t["shape"])
    return out


class Reference:
    def __init__(self, model_dir: Path) -> None:
        r = read_safetensors(model_dir / "reference.safetensors")
        self.prompt_ids = [int(i) for i in r["prompt_ids"]]
        self.greedy_ids = [int(i) for i in r["greedy_ids"]]
        self.input_ids = [int(i) for i in r["input_ids"]]
        self.logits = r["logits"]


@pytest.fixture(scope="session")
def text_model(tmp_path_factory, shared, aero_binary) -> Path:
    """A random-weight Qwen2-shaped model (Q8_0) carrying Qwen2's tokenizer and chat template."""
    path = tmp_path_factory.mktemp("models") / "tiny-qwen2.gguf"
    run_aero(aero_binary, "synth", str(path), "--arch", "qwen2", "--preset", "tiny", "--type", "Q8_0", "--vocab",
             str(shared / "fixtures/tokenizer/ggml-vocab-qwen2.gguf"))
    return path


def have_b3sum() -> bool:
    return shutil.which("b3sum") is not None


def blake3(data: bytes) -> str:
    r = subprocess.run(["b3sum", "--no-names"], input=data, capture_output=True, check=True)
    return r.stdout.decode().strip()
