"""SessionConfig: one object with every Session option and safe defaults, so
a bare Session (and the client built on one) is as bounded as the server's."""

from __future__ import annotations

import dataclasses
import sys

import hpack
import pytest
from hyperframe.frame import PriorityFrame, SettingsFrame
from session_support import MAGIC, parse_frames, raw_frame

from nghttp2_cffi import (
    FEATURES,
    ErrorCode,
    FloodedError,
    HeaderListTooLargeError,
    RequestReceived,
    ResponseReceived,
    Session,
    SessionConfig,
    SettingCode,
    SettingsReceived,
)
from nghttp2_cffi.config import (
    DEFAULT_CONFIG,
    DEFAULT_GLITCH_LIMIT,
    DEFAULT_MAX_HEADER_LIST_SIZE,
)

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")]


def hpack_bomb(status: bool, refs: int) -> bytes:
    """A header block that stores one ~4 KiB field in the dynamic table, then
    refers to it ``refs`` times with one byte each (~4 KiB per byte)."""
    stored = hpack.Encoder().encode([(b"x-bomb", b"a" * 4000)], huffman=False)
    head = b"\x88" if status else hpack.Encoder().encode(GET)  # :status 200 / a request
    return head + stored + b"\xbe" * refs  # index 62: the stored field


def goaway_code(data: bytes) -> int | None:
    codes = [f.error_code for f in parse_frames(data) if f.type == 0x7]
    return codes[-1] if codes else None


# ---- the defaults ------------------------------------------------------------


def test_defaults_are_bounded():
    config = SessionConfig()
    assert config == DEFAULT_CONFIG
    assert config.max_header_list_size == DEFAULT_MAX_HEADER_LIST_SIZE == 64 * 1024
    assert config.glitch_limit == DEFAULT_GLITCH_LIMIT
    assert (config.stream_reset_rate is not None) == FEATURES["stream_reset_rate_limit"]
    assert (config.max_continuations is not None) == FEATURES["max_continuations"]
    assert Session("client").config is DEFAULT_CONFIG
    # The bound is announced (SETTINGS_MAX_HEADER_LIST_SIZE) unless said otherwise.
    assert config.initial_settings() == {
        SettingCode.MAX_CONCURRENT_STREAMS: 100,
        SettingCode.MAX_HEADER_LIST_SIZE: 64 * 1024,
    }
    explicit = SessionConfig(settings={SettingCode.MAX_HEADER_LIST_SIZE: 1000})
    assert explicit.initial_settings() == {SettingCode.MAX_HEADER_LIST_SIZE: 1000}
    assert SessionConfig(settings={}, max_header_list_size=None).initial_settings() == {}


def test_frozen_and_keyword_only():
    config = SessionConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_header_list_size = None  # type: ignore[misc]
    raised = dataclasses.replace(config, max_header_list_size=1 << 20)
    assert raised.max_header_list_size == 1 << 20 and raised.glitch_limit == config.glitch_limit
    if sys.version_info >= (3, 10):
        with pytest.raises(TypeError):
            SessionConfig({})  # type: ignore[misc]


def test_the_peer_sees_the_announced_bound():
    client, server = Session("client"), Session("server")
    seen = server.receive_data(client.data_to_send())
    settings = next(e for e in seen if isinstance(e, SettingsReceived)).settings
    assert settings[SettingCode.MAX_HEADER_LIST_SIZE] == 64 * 1024


# ---- HPACK bombs end a bare Session, either side ----------------------------


def test_bare_server_session_stops_an_hpack_bomb():
    server = Session("server")
    server.data_to_send()
    block = hpack_bomb(status=False, refs=4000)  # ~16 MB of header fields
    with pytest.raises(
        HeaderListTooLargeError, match=r"max_header_list_size \(65536 bytes"
    ) as info:
        server.receive_data(MAGIC + SettingsFrame(0).serialize() + raw_frame(0x1, 0x5, 1, block))
    assert isinstance(info.value, FloodedError)
    assert info.value.error_code == ErrorCode.ENHANCE_YOUR_CALM and info.value.limit == 65536
    assert not any(isinstance(e, RequestReceived) for e in server.events())
    assert goaway_code(server.data_to_send()) == ErrorCode.ENHANCE_YOUR_CALM


def test_bare_client_session_stops_an_hpack_bomb():
    client = Session("client")
    sid = client.send_request(GET)
    client.data_to_send()
    block = hpack_bomb(status=True, refs=4000)
    with pytest.raises(FloodedError, match="max_header_list_size") as info:
        client.receive_data(SettingsFrame(0).serialize() + raw_frame(0x1, 0x5, sid, block))
    assert info.value.error_code == ErrorCode.ENHANCE_YOUR_CALM
    assert goaway_code(client.data_to_send()) == ErrorCode.ENHANCE_YOUR_CALM


@pytest.mark.parametrize("limit", [1 << 20, None])
def test_the_bound_can_be_raised_or_lifted(limit):
    client = Session("client", config=SessionConfig(max_header_list_size=limit))
    sid = client.send_request(GET)
    client.data_to_send()
    block = hpack_bomb(status=True, refs=100)  # ~400 KB: over 64 KiB, under 1 MiB
    events = client.receive_data(SettingsFrame(0).serialize() + raw_frame(0x1, 0x5, sid, block))
    (response,) = [e for e in events if isinstance(e, ResponseReceived)]
    assert len(response.headers) == 102


def test_glitch_bucket_is_on_by_default():
    server = Session("server")
    server.data_to_send()
    priority = PriorityFrame(1, depends_on=0, stream_weight=16).serialize()
    with pytest.raises(FloodedError) as info:
        server.receive_data(MAGIC + SettingsFrame(0).serialize() + priority * 1500)
    assert info.value.error_code == ErrorCode.ENHANCE_YOUR_CALM
    # Off, the same frames are taken.
    server = Session("server", config=SessionConfig(glitch_limit=None))
    server.data_to_send()
    server.receive_data(MAGIC + SettingsFrame(0).serialize() + priority * 1500)
    assert server.want_read


# ---- the keywords of 0.1 -----------------------------------------------------


def test_old_keywords_still_work_for_one_release():
    with pytest.warns(DeprecationWarning, match="config=SessionConfig"):
        session = Session("server", max_header_list_size=100, auto_window_update=False)
    assert session.config == SessionConfig(max_header_list_size=100, auto_window_update=False)
    assert not session.auto_window_update
    with pytest.warns(DeprecationWarning, match="deprecated"):
        # settings=None meant the default SETTINGS.
        assert Session("client", settings=None).config == DEFAULT_CONFIG
    unknown = pytest.raises(TypeError, match="no_such_option")
    with pytest.warns(DeprecationWarning, match="deprecated"), unknown:
        Session("client", no_such_option=1)
