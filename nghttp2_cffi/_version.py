"""The package version: the one place it is written.

setuptools reads it from here without importing the package
(``[tool.setuptools.dynamic]`` in pyproject.toml), and both
``nghttp2_cffi.__version__`` and ``nghttp2.__version__`` import it, so a
source checkout, an editable install and a wheel all report the same string.
"""

__version__ = "0.1.0"
