"""The streaming engine's API (AirCELA's ``CELAEngine`` shapes) over aero's engine."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable, Mapping

from . import _aero
from ._aero import ArgumentError

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*", re.IGNORECASE)
_UNIT = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def check_device(device: str) -> None:
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise ArgumentError(f"unknown device {device!r} (auto, cpu, cuda or cuda:N)")


def parse_bytes(name: str, value: Any) -> int | None:
    """A memory budget in bytes: an int (bytes), or text such as '8GiB', '8G' (both 2**30 each), '500MB' (10**6 each)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ArgumentError(f"{name} must be a size such as 8000000000 or '8GiB' (got {value!r})")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ArgumentError(f"{name} must be a finite size (got {value!r})")
        amount = int(value)
    elif isinstance(value, str) and (m := _SIZE.fullmatch(value)):
        number, unit, binary, b = m.groups()
        # "8G" and "8GiB" are binary, as memory sizes usually are; "8GB" is decimal.
        base = 1000 if (b and not binary) else 1024
        if binary and not unit:
            raise ArgumentError(f"{name}: cannot read {value!r} as a size (e.g. '8GiB', '512MB', 8000000000)")
        amount = int(float(number) * base ** _UNIT[unit.lower()])
    else:
        raise ArgumentError(f"{name}: cannot read {value!r} as a size (e.g. '8GiB', '512MB', 8000000000)")
    if amount <= 0:
        raise ArgumentError(f"{name} must be more than 0 bytes (got {value!r})")
    return amount


def _path(path: str | os.PathLike) -> str:
    text = os.fspath(path)
    # Names such as hf:ORG/NAME or ollama:NAME pass through to aero untouched.
    return text if ":" in text and not os.path.exists(text) else os.path.abspath(os.path.expanduser(text))


class Engine:
    """A model ready to generate: aero's engine with its tokenizer and chat template.

    Make one with :meth:`from_pretrained` or :meth:`from_gguf`. ``generate`` streams text pieces
    as they are produced (``stream=False`` returns the text), ``chat`` renders a conversation with
    the model's template first. A list of token ids instead of text works without a tokenizer and
    gives ids. One generation runs at a time: a new ``generate``/``chat`` ends a stream not yet
    exhausted. The GIL is released while the model runs; Ctrl-C stops between tokens.

    Memory budgets (``gpu_mem``, ``ram``) place the layers as ``aero run --gpu-mem/--ram`` does
    (kept in :attr:`budgets`): on a GPU, layers beyond ``gpu_mem`` are streamed to it each step or
    computed on the CPU; layers beyond ``ram`` are read from disk each step. Without them the
    whole model is mapped (and uploaded once to the GPU).
    """

    def __init__(self, core: _aero.Engine, budgets: dict[str, int | None]) -> None:
        self._core = core
        self.budgets = budgets
        self.last_stats: dict[str, Any] | None = None
        self._stream: _aero.Stream | None = None

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        gpu_mem: int | str | None = None,
        ram: int | str | None = None,
        device: str = "auto",
        threads: int = 0,
        context: int = 0,
        kv_type: str = "f16",
        tokenizer: str | os.PathLike | None = None,
        config: str | os.PathLike | None = None,
    ) -> "Engine":
        """Opens a model: ``.aero``, AEROSET, GGUF, safetensors or a Hugging Face folder.

        Args:
            gpu_mem, ram: memory budgets, bytes or text ('8GiB', '500MB'); see the class notes.
            device: 'auto' (a CUDA GPU when there is one, else the CPU), 'cpu', 'cuda', 'cuda:N'.
            threads: CPU threads (0: every core).
            context: tokens the KV cache holds (0: the model's, at most 4096).
            kv_type: KV cache type: 'f16', 'f32' or 'q8_0'.
            tokenizer: tokenizer.json, its folder, or a GGUF to use instead of the model's.
            config: an HF folder or GGUF supplying config and tokenizer the file lacks.
        """
        budgets = {"gpu_mem": parse_bytes("gpu_mem", gpu_mem), "ram": parse_bytes("ram", ram)}
        check_device(device)
        if not isinstance(threads, int) or threads < 0:
            raise ArgumentError(f"threads must be 0 (every core) or more (got {threads!r})")
        options = _aero.EngineOptions()
        options.device = device
        options.threads = threads
        options.context = context
        options.kv_type = kv_type
        options.metadata_from = _path(config) if config else ""
        options.tokenizer = _path(tokenizer) if tokenizer else ""
        options.gpu_mem = "" if budgets["gpu_mem"] is None else str(budgets["gpu_mem"])
        options.ram = "" if budgets["ram"] is None else str(budgets["ram"])
        return cls(_aero.Engine(_path(name_or_path), options), budgets)

    @classmethod
    def from_gguf(cls, path: str | os.PathLike, tokenizer_id: str | os.PathLike | None = None, **options: Any) -> "Engine":
        """Opens a GGUF file (one Ollama or llama.cpp wrote); ``tokenizer_id``: a tokenizer.json,
        its folder or a GGUF to use instead of the tokenizer the file carries. ``options`` as
        :meth:`from_pretrained`."""
        return cls.from_pretrained(path, tokenizer=tokenizer_id, **options)

    # -- Facts ----------------------------------------------------------------

    @property
    def backend(self) -> str:
        """What runs the model, e.g. 'cpu (16 threads, AVX-512)' or 'cuda (NVIDIA H200, ...)'."""
        return self._core.backend

    @property
    def context(self) -> int:
        return self._core.context

    @property
    def vocab_size(self) -> int:
        return self._core.vocab_size

    @property
    def architecture(self) -> str:
        return self._core.architecture

    @property
    def has_tokenizer(self) -> bool:
        return self._core.has_tokenizer

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        return self._core.tokenize(text, add_special, parse_special)

    def decode(self, ids: Iterable[int], special: bool = False) -> str:
        return self._core.decode(list(ids), special)

    def apply_chat_template(self, messages: list[Mapping[str, Any]], add_generation_prompt: bool = True,
                            template_variables: Mapping[str, Any] | None = None) -> list[int]:
        """The ids of MESSAGES rendered with the model's chat template (ChatML when it has none)."""
        return self._core.chat_prompt(_json("messages", messages), add_generation_prompt,
                                      _json("template_variables", template_variables or {}))

    # -- Generation -------------------------------------------------------------

    def generate(
        self,
        prompt: str | list[int],
        max_tokens: int = 100,
        temperature: float = 0.7,
        top_k: int = 50,
        stream: bool = True,
        *,
        top_p: float = 1.0,
        min_p: float = 0.0,
        repeat_penalty: float = 1.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repeat_last_n: int = 64,
        seed: int | None = None,
        greedy: bool = False,
        stop: list[str] | None = None,
        ignore_eos: bool = False,
    ) -> "_aero.Stream | str | list[int]":
        """Continues PROMPT: yields text pieces as they are produced (``stream=False``: the text).

        PROMPT is text (tokenized as ``aero run -p`` does: BOS as the model asks, special tokens
        parsed) or a list of token ids, which yields (or returns) the generated ids instead.
        Sampling as ``aero run``'s flags: temperature (0 or ``greedy=True``: the most likely
        token), top_k (0: off), top_p (1: off), min_p (0: off), repeat/presence/frequency
        penalties over the last ``repeat_last_n`` tokens, ``seed`` (None: random). Defaults are
        CELAEngine's (temperature 0.7, top-k 50, no top-p). Generation ends at the model's
        end-of-generation tokens (unless ``ignore_eos``), after ``max_tokens``, when the context
        is full, or at a ``stop`` string (which is not shown).
        """
        s = self._start(prompt, max_tokens=max_tokens, temperature=0.0 if greedy else temperature, top_k=top_k, top_p=top_p,
                        min_p=min_p, repeat_penalty=repeat_penalty, presence_penalty=presence_penalty,
                        frequency_penalty=frequency_penalty, repeat_last_n=repeat_last_n, seed=seed, stop=stop,
                        ignore_eos=ignore_eos, text=isinstance(prompt, str))
        return s if stream else s.rest()

    def chat(self, messages: list[Mapping[str, Any]], max_tokens: int = 512, *, stream: bool = True,
             add_generation_prompt: bool = True, template_variables: Mapping[str, Any] | None = None,
             **sampling: Any) -> "_aero.Stream | str":
        """The assistant's answer to MESSAGES ([{'role': 'user', 'content': '...'}, ...]), rendered
        with the model's chat template (``template_variables``: extra template variables such as
        ``enable_thinking``). Streams text like :meth:`generate`, whose sampling options it takes."""
        ids = self.apply_chat_template(messages, add_generation_prompt, template_variables)
        s = self._start(ids, max_tokens=max_tokens, text=True, **sampling)
        return s if stream else s.rest()

    def reset(self) -> None:
        """Ends the current generation (each generate or chat starts from an empty cache anyway)."""
        self._stream = None

    def stats(self) -> dict[str, Any] | None:
        """Token counts and seconds of the latest generation (prompt and generation), or None."""
        return None if self._stream is None else self._stream.stats

    def _start(self, prompt: str | list[int], *, max_tokens: int, text: bool, temperature: float = 0.7, top_k: int = 50,
               top_p: float = 1.0, min_p: float = 0.0, repeat_penalty: float = 1.0, presence_penalty: float = 0.0,
               frequency_penalty: float = 0.0, repeat_last_n: int = 64, seed: int | None = None, greedy: bool = False,
               stop: list[str] | None = None, ignore_eos: bool = False) -> _aero.Stream:
        if isinstance(prompt, str):
            ids = self._core.tokenize_prompt(prompt)
        elif isinstance(prompt, Iterable):
            ids = [int(i) for i in prompt]
        else:
            raise ArgumentError(f"the prompt must be text or a list of token ids (got {type(prompt).__name__})")
        if isinstance(stop, str):
            stop = [stop]
        if seed is not None and not (0 <= seed < 2**64):
            raise ArgumentError(f"seed must be between 0 and 2**64 - 1 (got {seed})")
        p = _aero.SamplingParams()
        p.temperature = 0.0 if greedy else temperature
        p.top_k = top_k
        p.top_p = top_p
        p.min_p = min_p
        p.repeat_penalty = repeat_penalty
        p.presence_penalty = presence_penalty
        p.frequency_penalty = frequency_penalty
        p.repeat_last_n = repeat_last_n
        if seed is not None:
            p.seed = seed
        extra = [] if ignore_eos else list(self._core.end_of_generation)
        self._stream = self._core.start(ids, text, max_tokens, p, list(stop or []), not ignore_eos, extra)
        return self._stream


def _json(name: str, value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"{name} must be JSON-like (lists, dicts, text, numbers): {e}") from None
