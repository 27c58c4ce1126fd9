"""Build the compiled core.  Metadata and tool settings live in pyproject.toml."""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("ACD_CYTHON_DEBUG") == "1"
TRACE = os.environ.get("ACD_CYTHON_TRACE") == "1"

macros = [("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
args = ["-O3"] if not DEBUG else ["-O0", "-g"]
extensions = [
    Extension("acd._core", ["src/acd/_core.pyx"], define_macros=macros, extra_compile_args=args),
    # the simulator's event loop: calls the engine's C methods (declared in _core.pxd)
    Extension("acd.sim._loop", ["src/acd/sim/_loop.pyx"], define_macros=macros, extra_compile_args=args),
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives={
            "language_level": 3,
            "embedsignature": True,
            "boundscheck": DEBUG,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "linetrace": TRACE,
        },
    ),
)
