"""The binding itself: raw ``ffi``/``lib`` access, what the module says about
the linked libnghttp2, and the version guards (built against 1.52 and 1.64)."""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hyperframe.frame import SettingsFrame
from session_support import MAGIC, parse_frames

import nghttp2_cffi
from nghttp2_cffi import (
    FEATURES,
    VERSION,
    VERSION_NUM,
    ErrorCode,
    Session,
    SessionConfig,
    SettingCode,
    ffi,
    lib,
)
from nghttp2_cffi.library import COMPILED_VERSION_NUM

ROOT = Path(nghttp2_cffi.__file__).resolve().parent.parent
#: An extracted libnghttp2 other than the system's (Debian 13's 1.64 on 12).
OTHER_ROOT = Path(os.environ.get("NGHTTP2_CFFI_OTHER_ROOT", "/opt/nghttp2-1.64"))


def version_num(version: str) -> int:
    major, minor, patch = (int(x) for x in version.split(".")[:3])
    return major << 16 | minor << 8 | patch


# ---- raw access ------------------------------------------------------------------


def test_ffi_and_lib_are_the_compiled_module():
    from nghttp2_cffi import _nghttp2

    assert ffi is _nghttp2.ffi and lib is _nghttp2.lib
    assert ffi.sizeof("nghttp2_nv") >= 2 * ffi.sizeof("void *") + 2 * ffi.sizeof("size_t")
    assert ffi.string(lib.NGHTTP2_CLIENT_MAGIC) == MAGIC
    assert len(MAGIC) == lib.NGHTTP2_CLIENT_MAGIC_LEN
    assert ffi.string(lib.NGHTTP2_PROTO_VERSION_ID) == b"h2"
    assert ffi.string(lib.NGHTTP2_CLEARTEXT_PROTO_VERSION_ID) == b"h2c"
    assert lib.NGHTTP2_INITIAL_WINDOW_SIZE == 65535
    assert lib.NGHTTP2_MAX_WINDOW_SIZE == 2**31 - 1


def test_raw_client_session_without_callbacks():
    callbacks = ffi.new("nghttp2_session_callbacks **")
    assert lib.nghttp2_session_callbacks_new(callbacks) == 0
    session_p = ffi.new("nghttp2_session **")
    rv = lib.nghttp2_session_client_new2(session_p, callbacks[0], ffi.NULL, ffi.NULL)
    lib.nghttp2_session_callbacks_del(callbacks[0])
    assert rv == 0
    session = session_p[0]
    try:
        assert lib.nghttp2_session_check_server_session(session) == 0
        iv = ffi.new(
            "nghttp2_settings_entry[2]",
            [
                (lib.NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 50),
                (lib.NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20),
            ],
        )
        assert lib.nghttp2_submit_settings(session, 0, iv, 2) == 0
        assert lib.nghttp2_session_want_write(session)
        out = raw_send(session)
        assert out.startswith(MAGIC)
        (settings,) = parse_frames(out[len(MAGIC) :])
        assert isinstance(settings, SettingsFrame)
        assert settings.settings == {3: 50, 4: 1 << 20}
        # A Session as the server: the raw session reads its answer.
        server = Session("server")
        server.receive_data(out)
        reply = server.data_to_send()
        assert lib.nghttp2_session_mem_recv(session, reply, len(reply)) == len(reply)
        assert (
            lib.nghttp2_session_get_remote_settings(
                session, lib.NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS
            )
            == 100
        )
        assert (
            lib.nghttp2_session_get_local_settings(
                session, lib.NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE
            )
            == 1 << 20
        )  # acknowledged by the server
        ack = parse_frames(raw_send(session))
        assert [f.flags for f in ack] == [{"ACK"}]
    finally:
        lib.nghttp2_session_del(session)


def raw_send(session) -> bytes:
    data = ffi.new("const uint8_t **")
    out = b""
    while True:
        n = lib.nghttp2_session_mem_send(session, data)
        assert n >= 0
        if n == 0:
            return out
        out += ffi.buffer(data[0], n)[:]


def test_pack_settings_payload():
    iv = ffi.new("nghttp2_settings_entry[3]", [(1, 8192), (2, 0), (4, 65535 * 2)])
    buf = ffi.new("uint8_t[64]")
    n = lib.nghttp2_pack_settings_payload(buf, 64, iv, 3)
    assert n == 18
    assert ffi.buffer(buf, n)[:] == struct.pack(">HIHIHI", 1, 8192, 2, 0, 4, 131070)
    assert lib.nghttp2_pack_settings_payload(buf, 10, iv, 3) == lib.NGHTTP2_ERR_INSUFF_BUFSIZE
    bad = ffi.new("nghttp2_settings_entry[1]", [(2, 5)])  # ENABLE_PUSH must be 0 or 1
    assert lib.nghttp2_pack_settings_payload(buf, 64, bad, 1) == lib.NGHTTP2_ERR_INVALID_ARGUMENT


def test_raw_hpack_tables():
    deflater_p = ffi.new("nghttp2_hd_deflater **")
    assert lib.nghttp2_hd_deflate_new(deflater_p, 1024) == 0
    deflater = ffi.gc(deflater_p[0], lib.nghttp2_hd_deflate_del)
    # The deflater uses at most what it was created with ...
    assert lib.nghttp2_hd_deflate_get_max_dynamic_table_size(deflater) == 1024
    assert lib.nghttp2_hd_deflate_change_table_size(deflater, 8192) == 0
    assert lib.nghttp2_hd_deflate_get_max_dynamic_table_size(deflater) == 1024
    # ... and less when the decoder asks.
    assert lib.nghttp2_hd_deflate_change_table_size(deflater, 512) == 0
    assert lib.nghttp2_hd_deflate_get_max_dynamic_table_size(deflater) == 512
    assert lib.nghttp2_hd_deflate_get_num_table_entries(deflater) == 61  # static only
    name, value = ffi.new("char[]", b"x-name"), ffi.new("char[]", b"value")
    nv = ffi.new(
        "nghttp2_nv *", (ffi.cast("uint8_t *", name), ffi.cast("uint8_t *", value), 6, 5, 0)
    )
    bound = lib.nghttp2_hd_deflate_bound(deflater, nv, 1)
    assert bound >= 6 + 5 + 3
    inflater_p = ffi.new("nghttp2_hd_inflater **")
    assert lib.nghttp2_hd_inflate_new(inflater_p) == 0
    inflater = ffi.gc(inflater_p[0], lib.nghttp2_hd_inflate_del)
    assert lib.nghttp2_hd_inflate_get_dynamic_table_size(inflater) == 0
    assert lib.nghttp2_hd_inflate_get_max_dynamic_table_size(inflater) == 4096
    entry = lib.nghttp2_hd_inflate_get_table_entry(inflater, 2)  # static :method GET
    assert ffi.unpack(ffi.cast("char *", entry.name), entry.namelen) == b":method"
    assert ffi.unpack(ffi.cast("char *", entry.value), entry.valuelen) == b"GET"


def test_strerror_functions():
    text = ffi.string(lib.nghttp2_strerror(lib.NGHTTP2_ERR_INVALID_ARGUMENT)).decode()
    assert text == "Invalid argument"
    assert ffi.string(lib.nghttp2_http2_strerror(ErrorCode.PROTOCOL_ERROR)) == b"PROTOCOL_ERROR"
    assert lib.nghttp2_is_fatal(lib.NGHTTP2_ERR_NOMEM)
    assert not lib.nghttp2_is_fatal(lib.NGHTTP2_ERR_INVALID_ARGUMENT)


def test_session_raw_pointer_works_with_lib():
    client = Session("client")
    assert lib.nghttp2_session_check_server_session(client.raw) == 0
    assert lib.nghttp2_session_get_next_stream_id(client.raw) == 1
    client.send_request(
        [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/")]
    )
    client.data_to_send()
    assert lib.nghttp2_session_get_next_stream_id(client.raw) == 3 == client.next_stream_id
    assert lib.nghttp2_session_check_server_session(Session("server").raw) == 1


# ---- versions and features ----------------------------------------------------


def test_version_constants_agree():
    assert re.fullmatch(r"\d+\.\d+\.\d+(-DEV)?", VERSION)
    assert version_num(VERSION) == VERSION_NUM
    assert VERSION_NUM >= 0x013400  # 1.52, the oldest supported
    info = lib.nghttp2_version(0)
    assert ffi.string(info.version_str).decode() == VERSION
    # nghttp2_version(least) returns NULL when the library is older.
    assert lib.nghttp2_version(VERSION_NUM + 1) == ffi.NULL
    # Built and run against the same library (an rpath for non-system ones).
    assert COMPILED_VERSION_NUM == VERSION_NUM


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc (Linux)")
def test_version_is_the_mapped_library():
    # Ask the libnghttp2 actually mapped into this process, through ctypes,
    # not through our module.
    with open("/proc/self/maps") as maps:
        paths = {
            line.split()[-1]
            for line in maps
            if "libnghttp2.so" in line and line.split()[-1].startswith("/")
        }
    assert len(paths) == 1, paths
    so = ctypes.CDLL(paths.pop())

    class Info(ctypes.Structure):
        _fields_ = [
            ("age", ctypes.c_int),
            ("version_num", ctypes.c_int),
            ("version_str", ctypes.c_char_p),
            ("proto_str", ctypes.c_char_p),
        ]

    so.nghttp2_version.restype = ctypes.POINTER(Info)
    info = so.nghttp2_version(0).contents
    assert info.version_str.decode() == VERSION
    assert info.version_num == VERSION_NUM
    assert info.proto_str == b"h2"


def test_feature_flags():
    assert set(FEATURES) == {
        "ssize_api",
        "stream_reset_rate_limit",
        "max_continuations",
        "max_settings",
        "max_outbound_ack",
        "no_rfc9113_leading_and_trailing_ws_validation",
        "server_fallback_rfc7540_priorities",
        "extpri_get",
        "extpri_parse",
    }
    assert all(isinstance(v, bool) for v in FEATURES.values())
    # Compiled with the guards for the present version.
    assert FEATURES["ssize_api"] == (VERSION_NUM >= 0x013D00)
    assert FEATURES["ssize_api"] == (COMPILED_VERSION_NUM >= 0x013D00)
    assert FEATURES["ssize_api"] == bool(lib.N2C_HAS_SSIZE_API)
    if VERSION_NUM >= 0x013D00:  # 1.61 has every optional function we probe
        assert all(FEATURES.values()), FEATURES


@pytest.mark.parametrize(
    ("feature", "option", "value"),
    [
        ("stream_reset_rate_limit", "stream_reset_rate", (100, 10)),
        ("max_continuations", "max_continuations", 16),
        ("max_settings", "max_settings", 32),
        ("max_outbound_ack", "max_outbound_ack", 100),
    ],
)
def test_features_match_what_sessions_accept(feature: str, option: str, value):
    if FEATURES[feature]:
        Session("server", config=SessionConfig(**{option: value})).close()
    else:
        with pytest.raises(NotImplementedError, match="newer libnghttp2"):
            Session("server", config=SessionConfig(**{option: value}))


def test_max_outbound_ack_takes_effect():
    if not FEATURES["max_outbound_ack"]:
        pytest.skip("the linked libnghttp2 has no nghttp2_option_set_max_outbound_ack")
    from nghttp2_cffi import FloodedError

    server = Session("server", config=SessionConfig(max_outbound_ack=20))
    ping = b"\0\0\x08\x06\0\0\0\0\0" + b"12345678"
    with pytest.raises(FloodedError):
        server.receive_data(MAGIC + SettingsFrame(0).serialize() + ping * 100)


# ---- the other libnghttp2 --------------------------------------------------------

EXCHANGE = textwrap.dedent(
    """
    import json, sys
    import nghttp2_cffi as n
    from nghttp2_cffi import library

    client, server = n.Session("client"), n.Session("server")
    request = [(":method", "POST"), (":scheme", "http"), (":authority", "x"), (":path", "/")]
    sid = client.send_request(request, body=b"q" * 200000, trailers=[("x-t", "1")])
    events = []
    for _ in range(100):
        a, b = client.data_to_send(), server.data_to_send()
        if not a and not b:
            break
        if a:
            events += server.receive_data(a)
        if b:
            events += client.receive_data(b)
        for e in list(events):
            if isinstance(e, n.RequestReceived):
                events.remove(e)
                server.send_response(e.stream_id, [(":status", "200")], b"r" * 100000)
    got = {}
    for e in events:
        if isinstance(e, n.DataReceived):
            got[e.stream_id] = got.get(e.stream_id, 0) + len(e.data)
    d, i = n.HDDeflater(), n.HDInflater()
    hpack_ok = i.inflate(d.deflate(request)) == [(k.encode(), v.encode()) for k, v in request]
    print(json.dumps({
        "file": n.__file__,
        "version": n.VERSION,
        "compiled": library.COMPILED_VERSION_NUM,
        "features": n.FEATURES,
        "closed": sorted({e.stream_id for e in events if isinstance(e, n.StreamClosed)}),
        "trailers": [e.headers[0][0].decode() for e in events
                     if isinstance(e, n.TrailersReceived)],
        "hpack": hpack_ok,
        "data": got,
    }))
    """
)


def _other_pkgconfig() -> Path | None:
    found = sorted(OTHER_ROOT.glob("usr/lib/*/pkgconfig/libnghttp2.pc"))
    return found[0] if found else None


@pytest.mark.slow
@pytest.mark.skipif(
    not (ROOT / "build_ffi.py").is_file(), reason="needs the source tree (build_ffi.py)"
)
@pytest.mark.skipif(
    _other_pkgconfig() is None,
    reason=f"no other libnghttp2 extracted at {OTHER_ROOT} (set NGHTTP2_CFFI_OTHER_ROOT)",
)
@pytest.mark.skipif(shutil.which("pkg-config") is None, reason="needs pkg-config")
def test_builds_and_runs_against_the_other_libnghttp2(tmp_path: Path):
    pc = _other_pkgconfig()
    assert pc is not None
    env = {
        **os.environ,
        "PKG_CONFIG_SYSROOT_DIR": str(OTHER_ROOT),
        "PKG_CONFIG_LIBDIR": str(pc.parent),
    }
    env.pop("PKG_CONFIG_PATH", None)
    want = subprocess.run(
        ["pkg-config", "--modversion", "libnghttp2"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # A copy of the sources only: the checkout's own module stays untouched.
    shutil.copy(ROOT / "build_ffi.py", tmp_path)
    shutil.copytree(ROOT / "csrc", tmp_path / "csrc")
    (tmp_path / "nghttp2_cffi").mkdir()
    for source in (ROOT / "nghttp2_cffi").glob("*.py"):
        shutil.copy(source, tmp_path / "nghttp2_cffi")
    build = subprocess.run(
        [sys.executable, "build_ffi.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert list((tmp_path / "nghttp2_cffi").glob("_nghttp2*.so"))
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("PKG_CONFIG")}
    run_env["PYTHONPATH"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", EXCHANGE],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["file"].startswith(str(tmp_path))
    assert result["version"] == want
    assert result["compiled"] == version_num(want)
    assert result["features"]["ssize_api"] == (version_num(want) >= 0x013D00)
    if version_num(want) >= 0x013D00:
        assert all(result["features"].values())
    assert result["closed"] == [1]
    assert result["trailers"] == ["x-t"]
    assert result["hpack"] is True
    assert result["data"] == {"1": 200000 + 100000}


def test_settings_codes_match_the_header():
    assert SettingCode.HEADER_TABLE_SIZE == lib.NGHTTP2_SETTINGS_HEADER_TABLE_SIZE == 1
    assert SettingCode.NO_RFC7540_PRIORITIES == 9
    assert [int(c) for c in ErrorCode if not c.name.startswith("UNKNOWN")] == list(range(14))
