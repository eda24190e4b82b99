"""Builds nghttp2_cffi._nghttp2, the out-of-line cffi module.

The C surface lives in csrc/: nghttp2.cdef.h (what Python may call of
nghttp2.h), glue.cdef.h and glue.c (the C glue).  This file only finds the
system's libnghttp2 and joins those pieces.  Run by setuptools through
``cffi_modules``; ``python build_ffi.py`` builds in place for development.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"

#: Overrides for a libnghttp2 outside the usual places.  When
#: NGHTTP2_CFFI_INCLUDE_DIR is set it is the only place nghttp2/nghttp2.h is
#: looked for (no pkg-config, no /usr/include), which also lets tests play a
#: machine without the headers.
INCLUDE_DIR_ENV = "NGHTTP2_CFFI_INCLUDE_DIR"
LIBRARY_DIR_ENV = "NGHTTP2_CFFI_LIBRARY_DIR"
MISSING = (
    "error: nghttp2_cffi needs the libnghttp2 development files ({why}): "
    "install them with 'apt-get install libnghttp2-dev' on Debian or Ubuntu "
    "('dnf install libnghttp2-devel' on Fedora, 'brew install nghttp2' on "
    "macOS), or set NGHTTP2_CFFI_INCLUDE_DIR and NGHTTP2_CFFI_LIBRARY_DIR, "
    "then build again."
)
SYSTEM_INCLUDE_DIRS = ("/usr/include", "/usr/local/include", "/opt/homebrew/include")

# nghttp2_option_set_* functions that arrived after 1.52 upstream but that
# distributions backport as security fixes; probed in the header itself.
PROBED = {
    "STREAM_RESET_RATE_LIMIT": "nghttp2_option_set_stream_reset_rate_limit",
    "MAX_CONTINUATIONS": "nghttp2_option_set_max_continuations",
    "MAX_SETTINGS": "nghttp2_option_set_max_settings",
    "MAX_OUTBOUND_ACK": "nghttp2_option_set_max_outbound_ack",
    "NO_RFC9113_WS_VALIDATION": "nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation",
    "SERVER_FALLBACK_RFC7540_PRIORITIES": "nghttp2_option_set_server_fallback_rfc7540_priorities",
    # RFC 9218 (1.53+): read a stream's priority, parse a Priority field.
    "EXTPRI_GET": "nghttp2_session_get_extpri_stream_priority",
    "EXTPRI_PARSE": "nghttp2_extpri_parse_priority",
}


class MissingLibrary(SystemExit):
    """libnghttp2's headers or library are not where the build looks.

    A SystemExit whose code is the one-line message: Python prints it without
    a traceback, and pip shows it as the build's only output line.
    """

    def __init__(self, why: str) -> None:
        super().__init__(MISSING.format(why=why))


def _pkg_config(*args: str) -> list[str] | None:
    try:
        out = subprocess.run(
            ["pkg-config", *args, "libnghttp2"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out)


def find_library() -> tuple[list[str], list[str], list[str], Path]:
    """Include dirs, library dirs, libraries and the nghttp2.h in use."""
    include_override = os.environ.get(INCLUDE_DIR_ENV)
    library_override = os.environ.get(LIBRARY_DIR_ENV)
    include_dirs: list[str] = []
    library_dirs: list[str] = []
    libraries: list[str] = []
    if include_override is None or library_override is None:
        cflags = _pkg_config("--cflags")
        libs = _pkg_config("--libs")
        if cflags is not None and libs is not None:
            include_dirs = [f[2:] for f in cflags if f.startswith("-I")]
            library_dirs = [f[2:] for f in libs if f.startswith("-L")]
            libraries = [f[2:] for f in libs if f.startswith("-l")]
    if library_override is not None:
        library_dirs, libraries = [library_override], []
        if not any(Path(library_override).glob("libnghttp2.*")):
            raise MissingLibrary(f"no libnghttp2 in {LIBRARY_DIR_ENV}={library_override}")
    libraries = libraries or ["nghttp2"]
    if include_override is not None:
        header = Path(include_override) / "nghttp2" / "nghttp2.h"
        if not header.is_file():
            raise MissingLibrary(f"no nghttp2/nghttp2.h in {INCLUDE_DIR_ENV}={include_override}")
        return [include_override], library_dirs, libraries, header
    for directory in [*include_dirs, *SYSTEM_INCLUDE_DIRS]:
        header = Path(directory) / "nghttp2" / "nghttp2.h"
        if header.is_file():
            if directory not in include_dirs and directory != "/usr/include":
                include_dirs.append(directory)
            return include_dirs, library_dirs, libraries, header
    raise MissingLibrary("nghttp2/nghttp2.h was found neither by pkg-config nor in /usr/include")


def make_ffi() -> FFI:
    include_dirs, library_dirs, libraries, header = find_library()
    text = header.read_text(errors="replace")
    probes = "".join(
        f"#define N2C_PROBED_{flag} {int(name + '(' in text)}\n" for flag, name in PROBED.items()
    )
    builder = FFI()
    builder.cdef((CSRC / "nghttp2.cdef.h").read_text())
    builder.cdef((CSRC / "glue.cdef.h").read_text())
    builder.set_source(
        "nghttp2_cffi._nghttp2",
        probes + (CSRC / "glue.c").read_text(),
        include_dirs=include_dirs,
        library_dirs=library_dirs,
        runtime_library_dirs=[d for d in library_dirs if d not in ("/usr/lib", "/usr/lib64")],
        libraries=libraries,
        extra_compile_args=["-O2", "-Wno-deprecated-declarations"],
    )
    return builder


ffibuilder = make_ffi()

if __name__ == "__main__":
    os.chdir(HERE)
    ffibuilder.compile(verbose=False)
