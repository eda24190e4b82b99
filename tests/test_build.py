"""build_ffi.py: where it looks for libnghttp2, and what it says when it is not there."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_FFI = ROOT / "build_ffi.py"

pytestmark = pytest.mark.skipif(
    not BUILD_FFI.is_file(), reason="needs the source tree (build_ffi.py is not installed)"
)


@pytest.fixture
def builder_copy(tmp_path: Path) -> Path:
    """build_ffi.py and csrc/ in a scratch directory: a build that fails to
    fail compiles there, not over the checkout's module."""
    shutil.copy(BUILD_FFI, tmp_path)
    shutil.copytree(ROOT / "csrc", tmp_path / "csrc")
    return tmp_path / "build_ffi.py"


@pytest.fixture
def build_ffi() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_ffi_under_test", BUILD_FFI)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_build(script: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **overrides}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_one_sentence_naming_the_package(proc: subprocess.CompletedProcess[str]) -> None:
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode != 0, output
    assert "libnghttp2-dev" in output
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output


def test_missing_headers_stop_the_build_with_one_sentence(builder_copy: Path, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_build(
        builder_copy,
        NGHTTP2_CFFI_INCLUDE_DIR=str(empty),
        PKG_CONFIG_LIBDIR=str(empty),
        PKG_CONFIG_PATH="",
    )
    assert_one_sentence_naming_the_package(proc)
    assert "nghttp2/nghttp2.h" in proc.stderr
    assert not list(builder_copy.parent.glob("nghttp2_cffi/_nghttp2*"))


def test_missing_library_stops_the_build_with_one_sentence(
    builder_copy: Path, tmp_path: Path, build_ffi: ModuleType
):
    headers = tmp_path / "include"
    (headers / "nghttp2").mkdir(parents=True)
    shutil.copy(build_ffi.find_library()[3], headers / "nghttp2")
    empty = tmp_path / "lib"
    empty.mkdir()
    proc = run_build(
        builder_copy,
        NGHTTP2_CFFI_INCLUDE_DIR=str(headers),
        NGHTTP2_CFFI_LIBRARY_DIR=str(empty),
    )
    assert_one_sentence_naming_the_package(proc)
    assert "NGHTTP2_CFFI_LIBRARY_DIR" in proc.stderr


def test_overrides_are_the_only_place_looked_at(
    build_ffi: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    headers = tmp_path / "include"
    (headers / "nghttp2").mkdir(parents=True)
    shutil.copy(build_ffi.find_library()[3], headers / "nghttp2")
    libdir = tmp_path / "lib"
    libdir.mkdir()
    (libdir / "libnghttp2.so").touch()
    monkeypatch.setenv("NGHTTP2_CFFI_INCLUDE_DIR", str(headers))
    monkeypatch.setenv("NGHTTP2_CFFI_LIBRARY_DIR", str(libdir))
    include_dirs, library_dirs, libraries, header = build_ffi.find_library()
    assert include_dirs == [str(headers)]
    assert library_dirs == [str(libdir)]
    assert libraries == ["nghttp2"]
    assert header == headers / "nghttp2" / "nghttp2.h"


def test_the_system_headers_are_not_a_fallback_for_the_override(
    build_ffi: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("NGHTTP2_CFFI_INCLUDE_DIR", str(tmp_path))
    with pytest.raises(build_ffi.MissingLibrary) as info:
        build_ffi.find_library()
    assert str(tmp_path) in str(info.value.code)
