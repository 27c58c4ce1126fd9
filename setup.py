"""Build the compiled core.  Metadata and tool settings live in pyproject.toml."""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("ACD_CYTHON_DEBUG") == "1"
TRACE = os.environ.get("ACD_CYTHON_TRACE") == "1"

macros = [("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
extensions = [
    Extension("acd._core", ["src/acd/_core.pyx"], define_macros=macros,
              extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"]),
]

setup(
    ext_modules=cythonize(
        extensions,
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
