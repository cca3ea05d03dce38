"""The original runtime's API (``aero_runtime``): AeroModelLoader, load_state_dict, AeroModel.

Same names and arguments as there; the differences are that every format aero reads works
(not only ``.aero``), nothing is downloaded, and the model runs on aero's engine, not transformers.
"""

from __future__ import annotations

import os
from typing import Any

from . import _aero, _tensors
from ._engine import Engine, check_device


def _path(path: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


class AeroModelLoader:
    """Metadata and weights of a model file.

    Args:
        aero_path: ``.aero``, AEROSET, GGUF, safetensors or a Hugging Face folder.
        model_id: optional HF folder or GGUF supplying config and tokenizer the file lacks.

    Example::

        loader = AeroModelLoader("model.gguf")
        print(loader.model_name, loader.architecture, loader.tensor_count)
        state_dict = loader.load_state_dict()

    Raises :class:`aero.NotFoundError` (a ``FileNotFoundError``) when the path does not exist and
    :class:`aero.Error` when it is not a model aero can read.
    """

    def __init__(self, aero_path: str | os.PathLike, model_id: str | os.PathLike | None = None) -> None:
        self.path = _path(aero_path)
        self._source = _aero.Source(self.path, _path(model_id) if model_id else "")

    @property
    def metadata(self) -> dict[str, Any]:
        """model_name, architecture and source_format, as the original's metadata chunk names them."""
        return {"model_name": self.model_name, "architecture": self.architecture, "source_format": self.source_format}

    @property
    def model_name(self) -> str:
        return self._source.name or "unknown"

    @property
    def architecture(self) -> str:
        return self._source.architecture or "unknown"

    @property
    def source_format(self) -> str:
        """'gguf' or 'safetensors': where the tensors came from (a .aero file says which it was converted from)."""
        return self._source.origin_format

    @property
    def container(self) -> str:
        """The file's own format: 'aero', 'gguf', 'safetensors' or 'hf' (a Hugging Face folder)."""
        return self._source.container

    @property
    def tensor_count(self) -> int:
        return self._source.tensor_count

    @property
    def file_size_mb(self) -> float:
        """Size on disk in MiB (a folder's files together)."""
        return self._source.file_bytes / (1024 * 1024)

    def tensors(self) -> list[tuple[str, str, list[int], int]]:
        """[(name, type, row-major shape, bytes)] as stored (type: 'f32', 'bf16', 'Q4_K', ...)."""
        return self._source.tensors()

    def load_state_dict(
        self,
        *,
        map_names: bool | None = None,
        target_dtype: Any = None,
        verbose: bool = True,
        framework: str | None = None,
        copy: bool = False,
        threads: int = 0,
    ) -> dict[str, Any]:
        """Every tensor as ``{name: tensor}``, ready for ``model.load_state_dict(sd)``.

        Tensors are torch tensors when torch imports, numpy arrays otherwise (``framework='pt'``
        or ``'np'`` chooses). Tensors stored unquantized are read-only zero-copy views of the
        mapped file (see :mod:`aero._tensors` for their lifetime); quantized ones are decoded to
        float32 with aero's decoders, in parallel on ``threads`` threads (0: every core).

        Args:
            map_names: GGUF names (``blk.0.attn_q.weight``) to Hugging Face names
                (``model.layers.0.self_attn.q_proj.weight``), with llama's q/k row permutation
                undone. None (default): whenever the file uses GGUF names and aero knows its model.
                ``rope_freqs.weight`` is left out (transformers derives it from the config).
            target_dtype: float32, float16, bfloat16 or float64 (torch dtype or name) for every
                floating-point tensor; None keeps the stored type (bfloat16 becomes float32 with
                numpy, which has none; quantized tensors become float32). Integer tensors keep theirs.
            verbose: log the count and time on the ``aero`` logger.
            copy: writable copies instead of views.
        """
        return _tensors.state_dict(self._source, map_names=map_names, target_dtype=target_dtype, framework=framework,
                                   copy=copy, threads=threads, verbose=verbose)


def load_state_dict(aero_path: str | os.PathLike, target_dtype: Any = None, **kwargs: Any) -> dict[str, Any]:
    """``AeroModelLoader(aero_path).load_state_dict(target_dtype=..., ...)``: {hf_name: tensor}."""
    return AeroModelLoader(aero_path).load_state_dict(target_dtype=target_dtype, **kwargs)


class AeroModel:
    """A model file loaded for generation, on aero's engine.

    Args:
        aero_path: ``.aero``, AEROSET, GGUF, safetensors or a Hugging Face folder.
        model_id: HF folder or GGUF supplying config and tokenizer the file lacks (as ``aero-run
            --model-id``); nothing is downloaded.
        device: ``"auto"`` (a CUDA GPU when there is one, else the CPU), ``"cpu"``, ``"cuda"``
            or ``"cuda:N"``.
        dtype: float32, float16 or bfloat16 (torch dtype or name), accepted for compatibility:
            aero computes on the weights as stored with float32 activations, at least as
            precise as any of them.
        threads, context, kv_type, tokenizer: as :meth:`aero.Engine.from_pretrained`.

    Example::

        model = AeroModel("qwen3-1.7b.gguf")
        print(model.generate("Explain gravity in one sentence."))
    """

    def __init__(
        self,
        aero_path: str | os.PathLike,
        model_id: str | os.PathLike | None = None,
        device: str = "auto",
        dtype: Any = None,
        *,
        threads: int = 0,
        context: int = 0,
        kv_type: str = "f16",
        tokenizer: str | os.PathLike | None = None,
    ) -> None:
        self._dtype = _tensors.dtype_name(dtype, ("float32", "float16", "bfloat16")) or "float32"
        check_device(device)
        self.path = _path(aero_path)
        self._model_id = model_id
        self._engine = Engine.from_pretrained(self.path, config=model_id, device=device, threads=threads, context=context,
                                              kv_type=kv_type, tokenizer=tokenizer)
        self._loader: AeroModelLoader | None = None

    @property
    def model_id(self) -> str | None:
        return None if self._model_id is None else os.fspath(self._model_id)

    @property
    def loader(self) -> AeroModelLoader:
        """An :class:`AeroModelLoader` of the same file (opened on first use)."""
        if self._loader is None:
            self._loader = AeroModelLoader(self.path, self._model_id)
        return self._loader

    @property
    def engine(self) -> Engine:
        """The :class:`aero.Engine` this model generates with."""
        return self._engine

    @property
    def device(self) -> str:
        """'cuda' or 'cpu': where the model runs."""
        return "cuda" if self._engine.backend.startswith("cuda") else "cpu"

    def load_weights(self) -> None:
        """Nothing to do: the weights are mapped when the model opens (kept for compatibility)."""

    def info(self) -> dict[str, Any]:
        loader = self.loader
        return {
            "aero_path": self.path,
            "model_id": self.model_id,
            "model_name": loader.model_name,
            "architecture": loader.architecture,
            "source_format": loader.source_format,
            "tensor_count": loader.tensor_count,
            "file_size_mb": round(loader.file_size_mb, 2),
            "device": self.device,
            "dtype": self._dtype,
        }

    def generate(
        self,
        prompt: str | list[int],
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        do_sample: bool = True,
        top_p: float = 0.9,
        top_k: int = 50,
        min_p: float = 0.0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        stop: list[str] | None = None,
    ) -> str | list[int]:
        """The prompt and its continuation, as the original (transformers' generate + decode) returns it.

        A text prompt gives the whole text (prompt + completion, special tokens left out); a list
        of token ids gives the ids (prompt + generated), as transformers' ``generate`` does.
        ``do_sample=False`` (or ``temperature=0``) is greedy. Generation ends at the model's
        end-of-generation tokens, after ``max_new_tokens``, or at a ``stop`` string.
        """
        text = isinstance(prompt, str)
        stream = self._engine._start(prompt, max_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0,
                                     top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repetition_penalty, seed=seed,
                                     stop=stop, text=text)
        completion = stream.rest()
        if text:
            return self._engine.decode(list(stream.prompt)) + completion
        return list(stream.prompt) + completion
