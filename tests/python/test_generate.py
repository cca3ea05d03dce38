"""Generation from Python: greedy ids against transformers' (the fixtures' greedy_ids), streaming
against non-streaming, chat through the model's template, errors, Ctrl-C, the GIL."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import aero
import aero_runtime
from conftest import FIXTURE_MODELS, Reference


def engine(path, **options):
    return aero.Engine.from_pretrained(path, device="cpu", threads=2, **options)


@pytest.mark.parametrize("model", FIXTURE_MODELS)
def test_engine_greedy_ids_equal_transformers(shared, model):
    folder = shared / "fixtures/hf" / model
    ref = Reference(folder)
    want = ref.greedy_ids[len(ref.prompt_ids):]
    e = engine(folder)
    got = e.generate(ref.prompt_ids, max_tokens=len(want), greedy=True, ignore_eos=True, stream=False)
    assert got == want
    assert list(e.generate(ref.prompt_ids, max_tokens=len(want), temperature=0, ignore_eos=True)) == want


@pytest.mark.parametrize("model", FIXTURE_MODELS)
def test_aero_model_greedy_ids_equal_transformers(shared, model):
    folder = shared / "fixtures/hf" / model
    ref = Reference(folder)
    m = aero_runtime.AeroModel(folder, device="cpu")
    got = m.generate(ref.prompt_ids, max_new_tokens=len(ref.greedy_ids) - len(ref.prompt_ids), do_sample=False)
    assert got == ref.greedy_ids  # prompt + continuation, as transformers' generate returns
    assert m.info()["tensor_count"] == len(aero.AeroModelLoader(folder).tensors())
    assert m.device == "cpu"


def test_streaming_yields_the_text_of_a_whole_generation(text_model):
    e = engine(text_model)
    pieces = list(e.generate("Once upon a time", max_tokens=40, seed=7, ignore_eos=True))
    assert len(pieces) > 1 and all(isinstance(p, str) and p for p in pieces)
    whole = e.generate("Once upon a time", max_tokens=40, seed=7, ignore_eos=True, stream=False)
    assert "".join(pieces) == whole
    # The same seed gives the same text; the ids decode to it.
    s = e.generate("Once upon a time", max_tokens=40, seed=7, ignore_eos=True)
    assert "".join(s) == whole and e.decode(s.tokens) == whole
    assert s.stats["generated_tokens"] == 40


def test_stop_strings_end_the_text_and_are_not_shown(text_model):
    e = engine(text_model)
    whole = e.generate("Hello", max_tokens=30, greedy=True, ignore_eos=True, stream=False)
    stop = whole[10:14]
    assert stop.strip()
    cut = e.generate("Hello", max_tokens=30, greedy=True, ignore_eos=True, stop=[stop], stream=False)
    assert cut == whole[:whole.index(stop)]


def test_chat_renders_the_models_template(text_model):
    e = engine(text_model)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    ids = e.apply_chat_template(messages)
    assert e.decode(ids, special=True).endswith("<|im_start|>assistant\n")
    answer = e.chat(messages, max_tokens=16, greedy=True, stream=False)
    assert answer == e.decode(e.generate(ids, max_tokens=16, greedy=True, stream=False))
    assert "".join(e.chat(messages, max_tokens=16, greedy=True)) == answer


def test_aero_model_text_is_prompt_and_completion(text_model):
    m = aero.AeroModel(text_model, device="cpu")
    out = m.generate("The sky is", max_new_tokens=12, do_sample=False)
    completion = m.engine.generate("The sky is", max_tokens=12, greedy=True, stream=False)
    assert out == "The sky is" + completion


def test_budgets_are_validated_and_kept(shared):
    folder = shared / "fixtures/hf/qwen2"
    e = engine(folder, gpu_mem="8GiB", ram="512MB")
    assert e.budgets == {"gpu_mem": 8 * 2**30, "ram": 512 * 10**6}
    assert engine(folder, ram=1 << 30).budgets["ram"] == 1 << 30
    for bad in ["lots", "-1G", "0", "GiB", "8XB", True]:
        with pytest.raises(ValueError, match="ram"):
            engine(folder, ram=bad)


def test_a_ram_budget_below_the_model_reads_layers_from_disk(shared):
    # As `aero run --ram 700KiB`: the fixture's layers do not fit, they stream from disk each
    # step (the disk tier), and the ids are still transformers'.
    folder = shared / "fixtures/hf/llama"
    ref = Reference(folder)
    want = ref.greedy_ids[len(ref.prompt_ids):]
    e = engine(folder, ram=700 * 1024)
    assert e.generate(ref.prompt_ids, max_tokens=len(want), greedy=True, ignore_eos=True, stream=False) == want
    # The budget reaches the planner: one too small for even the embedding and the cache is refused.
    with pytest.raises(aero.Error, match="RAM budget"):
        engine(folder, ram=100_000)


def test_bad_input_raises_aero_errors_with_the_message(shared, tmp_path):
    folder = shared / "fixtures/hf/llama"
    with pytest.raises(aero.NotFoundError, match="nothing-here"):
        engine(tmp_path / "nothing-here")
    with pytest.raises(aero.ArgumentError, match="unknown device"):
        aero.Engine.from_pretrained(folder, device="tpu")
    with pytest.raises(aero.ArgumentError, match="KV cache type"):
        engine(folder, kv_type="int3")
    with pytest.raises(aero.ArgumentError, match="longer than"):
        engine(folder, context=100000)
    e = engine(folder, context=16)
    with pytest.raises(aero.ArgumentError, match="temperature"):
        e.generate([1, 2, 3], temperature=-1)
    with pytest.raises(aero.ArgumentError, match="top-p"):
        e.generate([1, 2, 3], top_p=0)
    with pytest.raises(aero.ArgumentError, match="outside the vocabulary"):
        e.generate([1, 999])
    with pytest.raises(aero.ArgumentError, match="context holds 16"):
        e.generate(list(range(1, 20)))
    with pytest.raises(aero.ArgumentError, match="empty"):
        e.generate([])
    with pytest.raises(aero.Error, match="cannot take text"):
        e.generate("text needs a tokenizer")
    if "cuda" not in aero.Engine.from_pretrained(folder, device="auto").backend:
        with pytest.raises(aero.Error, match="cuda"):
            aero.Engine.from_pretrained(folder, device="cuda")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(aero.Error) as err:
        engine(garbage)
    assert "garbage.safetensors" in str(err.value) and "\n" not in str(err.value)


def test_a_new_generation_ends_the_previous_stream(shared):
    folder = shared / "fixtures/hf/qwen3"
    e = engine(folder)
    first = e.generate([1, 2, 3], max_tokens=10, ignore_eos=True)
    next(first)
    second = e.generate([4, 5, 6], max_tokens=3, greedy=True, ignore_eos=True, stream=False)
    assert len(second) == 3
    with pytest.raises(aero.Error, match="later generate"):
        next(first)


def test_ctrl_c_stops_a_long_generation(text_model):
    e = engine(text_model, context=2048)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        e.generate("Tell me everything", max_tokens=2000, ignore_eos=True, stream=False)
    timer.join()
    assert e.stats()["generated_tokens"] < 2000
    assert time.monotonic() - started < 60


def test_generation_releases_the_gil(text_model):
    e = engine(text_model, context=2048)
    done = threading.Event()

    def work():
        try:
            e.generate("Count", max_tokens=200, ignore_eos=True, stream=False)
        finally:
            done.set()

    thread = threading.Thread(target=work)
    counted = 0
    thread.start()
    while not done.is_set():
        counted += 1  # runs only while the generating thread has let the GIL go
    thread.join()
    assert counted > 10000
