"""Build the compiled core.  Metadata and tool settings live in pyproject.toml."""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("ACD_CYTHON_DEBUG") == "1"
TRACE = os.environ.get("ACD_CYTHON_TRACE") == "1"

macros = [("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
args = ["-O3"] if not DEBUG else ["-O0", "-g"]
extensions = [
    Extension("acd._core", ["src/acd/_core.pyx"], define_macros=macros, extra_compile_args=args),
    # the simulator's event loop: calls the engine's C methods (declared in _core.pxd)
    Extension("acd.sim._loop", ["src/acd/sim/_loop.pyx"], define_macros=macros, extra_compile_args=args),
]


class build_ext_and_relay(build_ext):
    """Also build the compiled classic AGI relay, an executable shipped inside the package
    (acd/adapters/asterisk/acd-agi-native; `acd-agi --native-path` prints where)."""

    relay_source = "src/acd/adapters/asterisk/agi_relay.c"

    def run(self):
        super().run()
        if os.name != "posix":
            return  # AF_UNIX relays and SIGHUP: POSIX only; the Python acd-agi remains
        # the package's directory, in the source tree for --inplace (editable installs) or in build/lib
        out_dir = os.path.dirname(self.get_ext_fullpath("acd.adapters.asterisk.agi_relay"))
        version = self.distribution.get_version()
        objects = self.compiler.compile([self.relay_source], output_dir=self.build_temp,
                                        macros=[("ACD_VERSION", f'"{version}"')],
                                        extra_postargs=["-O2"] if not DEBUG else ["-O0", "-g"])
        self.compiler.link_executable(objects, "acd-agi-native", output_dir=out_dir)

    def get_outputs(self):
        outputs = super().get_outputs()
        if os.name == "posix":
            out_dir = os.path.dirname(self.get_ext_fullpath("acd.adapters.asterisk.agi_relay"))
            outputs.append(os.path.join(out_dir, "acd-agi-native"))
        return outputs


setup(
    cmdclass={"build_ext": build_ext_and_relay},
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
