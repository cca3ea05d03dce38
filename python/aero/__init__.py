"""aero for Python: run language models and read their weights with aero's C++ library.

Two APIs, each with the names and arguments of the tool it replaces, so that code written for
it runs on aero with only the import changed:

* The original ``aero_runtime`` (also importable under that name)::

      from aero import AeroModel, AeroModelLoader, load_state_dict
      model = AeroModel("model.gguf", device="auto")
      print(model.generate("What is 2+2?", max_new_tokens=32))
      state_dict = load_state_dict("model.gguf")      # {hf_name: tensor}

* The streaming engine's (AirCELA's ``CELAEngine`` shapes)::

      from aero import Engine
      engine = Engine.from_pretrained("path/to/hf-folder", gpu_mem="8GiB")
      for piece in engine.generate("Once upon a time", max_tokens=50):
          print(piece, end="", flush=True)

Models are anything aero reads: ``.aero``, AEROSET, GGUF, safetensors, a Hugging Face folder.
Errors are :class:`aero.Error` (a ``RuntimeError``) with aero's one-line message; bad arguments
are :class:`aero.ArgumentError` (also a ``ValueError``), missing models
:class:`aero.NotFoundError` (also a ``FileNotFoundError``). Generation releases the GIL and
stops on Ctrl-C between tokens.
"""

from ._aero import ArgumentError, Error, NotFoundError, Stream
from ._engine import Engine
from ._runtime import AeroModel, AeroModelLoader, load_state_dict

__version__ = "0.1.0"

__all__ = [
    "AeroModel",
    "AeroModelLoader",
    "ArgumentError",
    "Engine",
    "Error",
    "NotFoundError",
    "Stream",
    "__version__",
    "load_state_dict",
]
