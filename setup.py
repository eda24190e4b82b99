"""cffi's setuptools hook has no pyproject.toml form: it lives here."""

import platform
import sysconfig

from setuptools import Extension, setup

options = {}
ext_modules = []
# cffi builds the extension for the stable ABI on CPython (_nghttp2.abi3.so),
# so one cp39-abi3 wheel serves every CPython >= 3.9.  Not on PyPy (its wheels
# keep their pp3xx tag) nor on a free-threaded CPython, which has no stable
# ABI.  Here rather than [tool.distutils.bdist_wheel] in pyproject.toml, which
# setuptools calls experimental.
if platform.python_implementation() == "CPython" and not sysconfig.get_config_var(
    "Py_GIL_DISABLED"
):
    options["bdist_wheel"] = {"py_limited_api": "cp39"}
    # nghttp2_cffi._events: the commonest events of a read built in C
    # (csrc/events.c, the limited API: one abi3 build).  Optional: where it
    # does not build, or on PyPy and free-threaded CPython, Session builds
    # them in Python.
    ext_modules.append(
        Extension(
            "nghttp2_cffi._events",
            ["csrc/events.c"],
            define_macros=[("Py_LIMITED_API", "0x03090000")],
            py_limited_api=True,
            optional=True,
        )
    )

setup(cffi_modules=["build_ffi.py:ffibuilder"], ext_modules=ext_modules, options=options)
