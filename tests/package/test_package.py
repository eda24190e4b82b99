"""The package's own metadata: one version everywhere."""

from __future__ import annotations

import importlib.metadata
import re

import nghttp2
import nghttp2_cffi
from nghttp2_cffi import _version


def test_one_version_everywhere() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", nghttp2_cffi.__version__)
    assert nghttp2.__version__ == nghttp2_cffi.__version__ == _version.__version__
    # The installed metadata (pyproject's dynamic version) reads the same file.
    assert importlib.metadata.version("nghttp2-cffi") == nghttp2_cffi.__version__
    # libnghttp2's own version is a different thing, under another name.
    assert nghttp2_cffi.__version__ != nghttp2_cffi.VERSION
