#!/usr/bin/env bash
# The other-libnghttp2 leg: nghttp2-cffi must build and pass on libnghttp2
# 1.52 (Debian 12) and 1.64 (Debian 13).  The machine proves its own version;
# this script fetches the OTHER Debian release's libnghttp2-14 and
# libnghttp2-dev with apt-get (private sources list and state, nothing is
# installed), extracts them under build/other-libnghttp2/root, builds the
# module in a copy of the tree against them (pkg-config sysroot; the module
# gets an rpath to the extracted library) and runs the binding's tests there.
#
# When the other release's packages cannot be fetched (no route to the
# archive, not Debian 12/13), it prints one line saying the leg was skipped
# and why, and exits 0; NGHTTP2_CFFI_REQUIRE_OTHER=1 makes that a failure.
#
#   OTHER_LIBNGHTTP2_ROOT=/opt/nghttp2-1.64 tools/other_libnghttp2.sh   # already extracted
#   DEBIAN_MIRROR=http://mirror.example/debian tools/other_libnghttp2.sh
#   OTHER_SUITE=bookworm tools/other_libnghttp2.sh     # choose the suite by hand
#   PYTHON=.venv/bin/python (default) is the interpreter; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$repo/build/other-libnghttp2
PY=${PYTHON:-$repo/.venv/bin/python}

skip() {
    echo "other-libnghttp2: SKIPPED, $1"
    [ "${NGHTTP2_CFFI_REQUIRE_OTHER:-0}" = 1 ] && exit 1
    exit 0
}

"$PY" -c 'import cffi, pytest' 2>/dev/null \
    || { echo "other-libnghttp2: $PY lacks cffi or pytest; run tools/setup.sh first" >&2; exit 1; }
# cffi compiles through setuptools, which Python 3.12+ venvs lack.
"$PY" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 64)' 2>/dev/null \
    || "$PY" -m pip install -q 'setuptools>=64'

root=${OTHER_LIBNGHTTP2_ROOT:-}
if [ -z "$root" ]; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    case "${OTHER_SUITE:-$codename}" in
        "${OTHER_SUITE:-}") other=$OTHER_SUITE ;;
        bookworm) other=trixie ;;
        trixie) other=bookworm ;;
        *) skip "this machine is '${codename:-unknown}', not Debian 12 (bookworm) or 13 (trixie)" ;;
    esac
    # The system's own Debian mirror (it may be the only one reachable).
    mirror=${DEBIAN_MIRROR:-$(
        {
            grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
            grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}'
        } | grep -v -- '-security' | head -n 1 || true
    )}
    mirror=${mirror:-http://deb.debian.org/debian}
    apt=$work/apt-$other
    rm -rf "$apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$work/debs-$other"
    : >"$apt/status"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $other main" \
        >"$apt/sources.list"
    aptopts=(
        -o "Dir::Etc::SourceList=$apt/sources.list"
        -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists"
        -o "Dir::State::status=$apt/status"
        -o "Dir::Cache=$apt/cache"
        -o APT::Sandbox::User=root
    )
    echo "other-libnghttp2: fetching $other's libnghttp2 from $mirror"
    # apt-get update exits 0 when the archive is unreachable: read its log.
    if ! apt-get "${aptopts[@]}" -q update >"$apt/update.log" 2>&1 \
        || grep -qE '^(E:|W: Failed to fetch|W: Some index files failed)' "$apt/update.log"; then
        skip "apt-get update for $other from $mirror failed: $(grep -m1 -E '^(E|W):' "$apt/update.log" || tail -n 1 "$apt/update.log")"
    fi
    rm -f "$work/debs-$other"/*.deb
    (cd "$work/debs-$other" && apt-get "${aptopts[@]}" -q download libnghttp2-14 libnghttp2-dev) \
        >"$apt/download.log" 2>&1 \
        || skip "apt-get download from $other failed: $(grep -m1 -E '^(E|W):' "$apt/download.log" || tail -n 1 "$apt/download.log")"
    root=$work/root-$other
    rm -rf "$root"
    for deb in "$work/debs-$other"/*.deb; do
        dpkg-deb -x "$deb" "$root"
    done
fi

pc=$(find "$root" -name libnghttp2.pc -print -quit)
[ -n "$pc" ] || { echo "other-libnghttp2: no libnghttp2.pc under $root" >&2; exit 1; }
export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$(dirname "$pc")
want=$(pkg-config --modversion libnghttp2)

# A copy of the working tree (tracked and new files, not ignored ones: no
# .venv, no built module), so the checkout's own build stays untouched.
src=$work/src
rm -rf "$src"
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | xargs -0 cp -P --parents -t "$src"
else
    tar -cf - --exclude=./build --exclude='./.venv*' --exclude='*.so' . | tar -xf - -C "$src"
fi
[ -f "$src/build_ffi.py" ] || { echo "other-libnghttp2: copying the tree to $src failed" >&2; exit 1; }
cd "$src"
echo "other-libnghttp2: building against libnghttp2 $want ($root)"
"$PY" build_ffi.py

# The module must be the copy's, compiled against and running on $want.
PYTHONPATH=$src "$PY" - "$want" "$src" <<'EOF'
import sys
import nghttp2_cffi
from nghttp2_cffi import library

want, src = sys.argv[1], sys.argv[2]
compiled = "%d.%d.%d" % (
    library.COMPILED_VERSION_NUM >> 16,
    (library.COMPILED_VERSION_NUM >> 8) & 0xFF,
    library.COMPILED_VERSION_NUM & 0xFF,
)
where = nghttp2_cffi.__file__
problems = []
if not where.startswith(src + "/"):
    problems.append(f"imported {where}, not the copy in {src}")
if library.VERSION != want:
    problems.append(f"runs on libnghttp2 {library.VERSION}")
if compiled != want:
    problems.append(f"compiled against nghttp2.h {compiled}")
if problems:
    sys.exit(f"other-libnghttp2: expected libnghttp2 {want}, but: " + "; ".join(problems))
print(f"other-libnghttp2: ready (libnghttp2 {library.VERSION}, features {library.FEATURES})")
EOF
PYTHONPATH=$src exec tools/binding_tests.sh "$PY" "$@"
