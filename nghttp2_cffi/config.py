"""SessionConfig: every option of a :class:`~nghttp2_cffi.Session`, with safe
defaults.

One object, shared by a bare ``Session``, the client (``nghttp2.client``) and
the server (whose ``Limits`` produce one), so that every caller gets the same
defences unless it says otherwise::

    Session("client", config=SessionConfig(max_header_list_size=1 << 20))

The defaults bound what a peer can make a session hold or do: a received
header list is at most :data:`DEFAULT_MAX_HEADER_LIST_SIZE` bytes (counted as
RFC 9113 does, and announced in the first SETTINGS), frames that cost work and
carry none go through a token bucket, and libnghttp2's own flood limits are
set where the linked library has them (see :data:`~nghttp2_cffi.FEATURES`).
``None`` turns a limit off (or, for libnghttp2's options, keeps the library's
default).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Mapping, Optional, Tuple

from .enums import SettingCode
from .library import FEATURES

#: The bound on a received header list, in RFC 9113 section 6.5.2 bytes (each
#: field: name + value + 32).  The h2 library's default too (and nghttpx's
#: header field buffers').  Real requests and responses stay far below it
#: (a browser request with its cookies: a few KiB), and it stops an HPACK
#: bomb at once: a 135 KB block of references to a 4 KiB table entry inflates
#: to 512 MiB (+1.5 GiB RSS) with no bound.
DEFAULT_MAX_HEADER_LIST_SIZE = 64 * 1024
#: The glitch bucket: ``(burst, refill per second)``.  A thousand frames that
#: carry nothing, then a hundred a second: h2load, browsers and gRPC stay far
#: below; floods (PING, SETTINGS, PRIORITY, empty DATA, RST_STREAM) end
#: within the burst.
DEFAULT_GLITCH_LIMIT: Tuple[int, int] = (1000, 100)
#: libnghttp2's Rapid Reset bucket (CVE-2023-44487), set looser than the
#: glitch bucket, which counts RST_STREAM too and answers ENHANCE_YOUR_CALM.
DEFAULT_STREAM_RESET_RATE: Tuple[int, int] = (2000, 66)
#: CONTINUATION frames per header block (the 2024 CONTINUATION floods);
#: libnghttp2 1.61's own default, set explicitly where the option exists.
DEFAULT_MAX_CONTINUATIONS = 8
#: Our SETTINGS_MAX_CONCURRENT_STREAMS unless ``settings`` says otherwise.
DEFAULT_MAX_CONCURRENT_STREAMS = 100

# Keyword-only where dataclasses can say so (3.10+); on 3.9 the fields can
# still be given by position, which nothing should rely on.
_KW_ONLY: dict[str, Any] = {"kw_only": True} if sys.version_info >= (3, 10) else {}


def _default_settings() -> Mapping[int, int]:
    return {SettingCode.MAX_CONCURRENT_STREAMS: DEFAULT_MAX_CONCURRENT_STREAMS}


@dataclasses.dataclass(frozen=True, **_KW_ONLY)
class SessionConfig:
    """The options of a :class:`~nghttp2_cffi.Session`; derive variants with
    ``dataclasses.replace(config, field=value)``."""

    #: SETTINGS sent in the first SETTINGS frame.  SETTINGS_MAX_HEADER_LIST_SIZE
    #: is added from ``max_header_list_size`` unless given here.
    settings: Mapping[int, int] = dataclasses.field(default_factory=_default_settings)
    #: Received DATA counts as consumed at once (WINDOW_UPDATEs follow by
    #: themselves).  Off: the peer's window opens only as far as
    #: ``Session.acknowledge_received_data`` says, so a slow reader slows its peer.
    auto_window_update: bool = True
    #: ``WindowUpdated`` events; a server rarely needs them.
    window_update_events: bool = True
    #: libnghttp2's HTTP messaging checks (RFC 9113 section 8: pseudo-headers,
    #: content-length against DATA, forbidden fields...).
    http_messaging: bool = True
    #: A received header list larger than this (RFC 9113 sizes: name + value
    #: + 32 per field) ends the session with ENHANCE_YOUR_CALM
    #: (``FloodedError``): HPACK bombs.  ``None``: no bound.
    max_header_list_size: Optional[int] = DEFAULT_MAX_HEADER_LIST_SIZE
    #: ``(burst, rate_per_second)``: a token bucket for frames that cost work
    #: and carry none (PING, SETTINGS, PRIORITY, PRIORITY_UPDATE, empty DATA,
    #: WINDOW_UPDATEs under 1 KiB, RST_STREAM, invalid frames); empty, it ends
    #: the session with ENHANCE_YOUR_CALM.  ``None``: no bucket.
    glitch_limit: Optional[Tuple[int, int]] = DEFAULT_GLITCH_LIMIT
    #: ``(burst, rate_per_second)`` of RST_STREAMs from the peer, libnghttp2's
    #: Rapid Reset limit (it answers INTERNAL_ERROR).  The default is None
    #: where the linked libnghttp2 lacks the option (FEATURES
    #: ``stream_reset_rate_limit``); asking for it there raises.
    stream_reset_rate: Optional[Tuple[int, int]] = (
        DEFAULT_STREAM_RESET_RATE if FEATURES["stream_reset_rate_limit"] else None
    )
    #: CONTINUATION frames per header block (FEATURES ``max_continuations``;
    #: None where the linked libnghttp2 lacks the option).
    max_continuations: Optional[int] = (
        DEFAULT_MAX_CONTINUATIONS if FEATURES["max_continuations"] else None
    )
    #: Entries per received SETTINGS frame (FEATURES ``max_settings``).
    max_settings: Optional[int] = None
    #: Queued PING and SETTINGS acknowledgements before libnghttp2 calls it a
    #: flood (FEATURES ``max_outbound_ack``).
    max_outbound_ack: Optional[int] = None
    #: The largest header block we send (libnghttp2: 64 KiB).
    max_send_header_block_length: Optional[int] = None
    #: Our HPACK encoder's dynamic table, whatever larger size the peer allows.
    max_deflate_dynamic_table_size: Optional[int] = None
    #: The peer's SETTINGS_MAX_CONCURRENT_STREAMS until its SETTINGS arrive.
    peer_max_concurrent_streams: Optional[int] = None
    #: Server side, RFC 9218 announced: schedule clients that do not announce
    #: SETTINGS_NO_RFC7540_PRIORITIES themselves by RFC 7540 (FEATURES
    #: ``server_fallback_rfc7540_priorities``).
    fallback_rfc7540_priorities: bool = False

    def __post_init__(self) -> None:
        # A copy: the caller's dict may change later, this config must not.
        object.__setattr__(self, "settings", dict(self.settings))

    def initial_settings(self) -> dict[int, int]:
        """The first SETTINGS frame: ``settings``, plus the header-list bound."""
        out = dict(self.settings)
        if self.max_header_list_size is not None:
            out.setdefault(SettingCode.MAX_HEADER_LIST_SIZE, self.max_header_list_size)
        return out


#: The defaults, for callers that take a config or None.
DEFAULT_CONFIG = SessionConfig()
