"""State dicts against the source tensors read independently: safetensors through a small reader
here, GGUF conversions of the fixture models (names and q/k rows back in Hugging Face's order),
and dequantization against gguf-py's reference values (fixtures/quant)."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

import aero
import aero_runtime
from conftest import FIXTURE_MODELS, Reference, blake3, have_b3sum, read_safetensors, run_aero

FRAMEWORKS = ["np", "pt"]


def as_numpy(t) -> np.ndarray:
    if isinstance(t, np.ndarray):
        return t
    import torch

    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


@pytest.fixture(params=FRAMEWORKS)
def framework(request):
    if request.param == "pt":
        pytest.importorskip("torch", reason="torch does not import: the numpy paths are tested")
    return request.param


@pytest.mark.parametrize("model", FIXTURE_MODELS)
def test_safetensors_state_dict_equals_the_file(shared, model, framework):
    folder = shared / "fixtures/hf" / model
    expected = read_safetensors(folder / "model.safetensors")
    sd = aero.load_state_dict(folder, framework=framework)
    assert list(sd) == list(expected)
    for name, want in expected.items():
        got = as_numpy(sd[name])
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want), name
    if framework == "np":
        view = sd[next(iter(sd))]
        assert not view.flags.writeable and not view.flags.owndata  # a view of the mapping, read-only
        with pytest.raises(ValueError):
            view[...] = 0


def test_views_outlive_the_loader(shared):
    folder = shared / "fixtures/hf/llama"
    expected = read_safetensors(folder / "model.safetensors")
    loader = aero.AeroModelLoader(folder)
    sd = loader.load_state_dict(framework="np")
    del loader
    gc.collect()
    for name, want in expected.items():
        assert np.array_equal(sd[name], want), name


def test_copy_gives_writable_tensors(shared, framework):
    sd = aero.load_state_dict(shared / "fixtures/hf/qwen2", framework=framework, copy=True)
    t = sd["model.norm.weight"]
    t[0] = 5  # must not fault
    assert float(t[0]) == 5


def test_loader_describes_the_model(shared):
    folder = shared / "fixtures/hf/llama"
    loader = aero_runtime.AeroModelLoader(folder)
    assert loader.architecture == "llama"
    assert loader.source_format == "safetensors"
    assert loader.container == "hf"
    assert loader.tensor_count == len(read_safetensors(folder / "model.safetensors"))
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    assert loader.file_size_mb == pytest.approx(size / 2**20)
    assert loader.metadata["source_format"] == "safetensors"


@pytest.mark.parametrize("model", FIXTURE_MODELS)
def test_gguf_conversion_maps_back_to_the_hf_tensors(shared, aero_binary, tmp_path, model, framework):
    folder = shared / "fixtures/hf" / model
    gguf = tmp_path / f"{model}.gguf"
    run_aero(aero_binary, "convert", str(folder), str(gguf))
    expected = read_safetensors(folder / "model.safetensors")
    loader = aero.AeroModelLoader(gguf)
    assert loader.source_format == "gguf"
    sd = loader.load_state_dict(framework=framework)
    assert sorted(sd) == sorted(expected)
    for name, want in expected.items():
        got = as_numpy(sd[name])
        assert got.shape == want.shape, name
        assert np.array_equal(got, want), name
    # Asked not to, the GGUF names and llama.cpp's row order stay.
    raw = loader.load_state_dict(map_names=False, framework="np")
    assert "blk.0.attn_q.weight" in raw
    q = expected["model.layers.0.self_attn.q_proj.weight"]
    assert np.array_equal(raw["blk.0.attn_q.weight"], q) == (model != "llama" and model != "llama-mha")


@pytest.mark.parametrize("model", ["phi3", "gemma2", "gemma3"])
def test_gguf_conversion_of_other_families_maps_back(shared, aero_binary, tmp_path, model):
    """Phi-3's fused matrices keep their names; Gemma's norms, stored in GGUF as 1 + w as
    llama.cpp's converter writes them, come back as w (to f32 rounding)."""
    folder = shared / "fixtures/hf" / model
    gguf = tmp_path / f"{model}.gguf"
    run_aero(aero_binary, "convert", str(folder), str(gguf))
    expected = read_safetensors(folder / "model.safetensors")
    sd = aero.load_state_dict(gguf, framework="np")
    assert sorted(sd) == sorted(expected)
    for name, want in expected.items():
        got = as_numpy(sd[name])
        assert got.shape == want.shape, name
        if model.startswith("gemma") and name.endswith("norm.weight"):
            assert np.allclose(got, want, rtol=0, atol=1e-6), name
        else:
            assert np.array_equal(got, want), name
    raw = aero.load_state_dict(gguf, map_names=False, framework="np")
    if model == "phi3":
        assert np.array_equal(raw["blk.0.attn_qkv.weight"], expected["model.layers.0.self_attn.qkv_proj.weight"])
        assert np.array_equal(raw["blk.0.ffn_up.weight"], expected["model.layers.0.mlp.gate_up_proj.weight"])
    else:
        norm = expected["model.layers.0.input_layernorm.weight"]
        assert np.allclose(raw["blk.0.attn_norm.weight"], norm + 1, rtol=0, atol=1e-6)


def test_quantized_tensors_decode_as_the_reference(shared):
    if not have_b3sum():
        pytest.skip("b3sum is not installed (scripts/setup.sh installs it)")
    quant = shared / "fixtures/quant"
    manifest = json.loads((quant / "MANIFEST.json").read_text())
    sd = aero.load_state_dict(quant / "quant-blocks.gguf", framework="np", threads=2)
    checked = 0
    for t in manifest["tensors"]:
        got = sd[t["name"]]
        assert got.shape == tuple(reversed(t["shape_ne"])), t["name"]
        got32 = np.ascontiguousarray(got, dtype=np.float32) if t["type_name"] != "BF16" else got
        assert blake3(got32.astype("<f4").tobytes()) == t["dequant_blake3"], t["name"]
        checked += 1
    assert checked == len(manifest["tensors"]) > 30


def test_target_dtype(shared, framework):
    folder = shared / "fixtures/hf/qwen3"
    expected = read_safetensors(folder / "model.safetensors")
    sd = aero.load_state_dict(folder, target_dtype="float16", framework=framework)
    for name, want in expected.items():
        got = as_numpy(sd[name])
        assert got.dtype == np.float16
        assert np.array_equal(got, want.astype(np.float16)), name
    if framework == "pt":
        import torch

        sd = aero.load_state_dict(folder, target_dtype=torch.bfloat16)
        t = sd["model.norm.weight"]
        assert t.dtype == torch.bfloat16
        assert torch.equal(t, torch.from_numpy(expected["model.norm.weight"].copy()).to(torch.bfloat16))
    else:
        with pytest.raises(aero.ArgumentError, match="bfloat16"):
            aero.load_state_dict(folder, target_dtype="bfloat16", framework="np")
    with pytest.raises(ValueError, match="unsupported dtype"):
        aero.load_state_dict(folder, target_dtype="int4")


def test_quantized_gguf_of_a_fixture_maps_names_and_decodes(shared, aero_binary, tmp_path, framework):
    """Q8_0 of the llama fixture: every matrix within Q8_0's error of the f32 source, q/k in HF order."""
    folder = shared / "fixtures/hf/llama"
    gguf = tmp_path / "llama-q8.gguf"
    run_aero(aero_binary, "quantize", str(folder), str(gguf), "Q8_0")
    expected = read_safetensors(folder / "model.safetensors")
    sd = aero.load_state_dict(gguf, framework=framework)
    assert sorted(sd) == sorted(expected)
    for name, want in expected.items():
        got = as_numpy(sd[name])
        assert got.dtype == np.float32 and got.shape == want.shape, name
        # Q8_0: 8-bit codes with a scale per 32 values (an f16): error below 1% of each block's largest value.
        tolerance = np.abs(want).max() / 127 * 0.51 + 1e-6
        assert np.abs(got - want).max() <= tolerance * 1.01, name


def test_transformers_model_takes_the_state_dict(shared, aero_binary, tmp_path):
    torch = pytest.importorskip("torch", reason="torch does not import")
    transformers = pytest.importorskip("transformers", reason="transformers does not import")
    folder = shared / "fixtures/hf/llama"
    gguf = tmp_path / "llama.gguf"
    run_aero(aero_binary, "convert", str(folder), str(gguf))
    config = transformers.AutoConfig.from_pretrained(folder)
    model = transformers.LlamaForCausalLM(config)
    model.load_state_dict(aero.load_state_dict(gguf))
    ref = Reference(folder)
    with torch.no_grad():
        logits = model(torch.tensor([ref.input_ids])).logits[0].double().numpy()
    assert np.abs(logits - ref.logits).max() <= 1e-4 * np.abs(ref.logits).max()


def test_bad_files_raise_aero_errors(shared, tmp_path):
    missing = tmp_path / "nothing-here.gguf"
    with pytest.raises(FileNotFoundError) as e:
        aero.AeroModelLoader(missing)
    assert isinstance(e.value, aero.Error) and str(missing) in str(e.value)
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\xff" * 60)
    with pytest.raises(aero.Error) as e:
        aero.load_state_dict(corrupt)
    assert "corrupt.gguf" in str(e.value) and "\n" not in str(e.value)
    assert not isinstance(e.value, FileNotFoundError)
    with pytest.raises(aero.ArgumentError):
        aero.load_state_dict(shared / "fixtures/hf/llama", framework="tf")
