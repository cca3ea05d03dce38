"""The original runtime's module name: ``from aero_runtime import AeroModel`` keeps working.

Everything here is :mod:`aero`'s (see its documentation).
"""

from aero import AeroModel, AeroModelLoader, Error, __version__, load_state_dict

__all__ = ["AeroModel", "AeroModelLoader", "Error", "__version__", "load_state_dict"]
