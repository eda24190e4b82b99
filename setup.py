"""cffi's setuptools hook has no pyproject.toml form: it lives here."""

from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])
