"""Limits and timeouts of the server, with their defaults.

Every field is also a command-line flag (``--max-concurrent-streams``...).
``None`` turns a limit off.  The HTTP/2 ones reach each connection's
:class:`~nghttp2_cffi.Session` through :meth:`Limits.session_config`; their
defaults are nghttp2_cffi's (:mod:`nghttp2_cffi.config`), which every Session
has, the client's included.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Tuple

from nghttp2_cffi import FEATURES, SettingCode
from nghttp2_cffi.config import (
    DEFAULT_GLITCH_LIMIT,
    DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_MAX_CONTINUATIONS,
    DEFAULT_MAX_HEADER_LIST_SIZE,
    DEFAULT_STREAM_RESET_RATE,
    SessionConfig,
)


@dataclasses.dataclass(frozen=True)
class Limits:
    #: SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have open at once.
    max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS
    #: SETTINGS_MAX_HEADER_LIST_SIZE, enforced: a larger request header block
    #: (an HPACK bomb, say) closes the connection with ENHANCE_YOUR_CALM.
    max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE
    #: SETTINGS_INITIAL_WINDOW_SIZE: body bytes a client may send per stream
    #: before the server has read them.
    initial_window_size: int = 1024 * 1024
    #: The connection-wide receive window.
    connection_window_size: int = 16 * 1024 * 1024
    #: Request body bytes per stream: 413 when content-length says more,
    #: RST_STREAM when the body outgrows it on the way.
    max_body_size: Optional[int] = 1024 * 1024 * 1024
    #: Open connections, TLS ones counted from accept (before their
    #: handshake); more are closed at once.
    max_connections: Optional[int] = 10_000
    #: Seconds for the client to acknowledge our SETTINGS (SETTINGS_TIMEOUT).
    settings_timeout: Optional[float] = 10.0
    #: Seconds from accepting a TLS connection to the end of its handshake;
    #: then it is closed.  A real client needs a few round trips (well under
    #: 2 s on a slow mobile link); a silent one holds a connection slot
    #: meanwhile.  10 s, as header_timeout (asyncio's own default is 60 s).
    handshake_timeout: Optional[float] = 10.0
    #: Seconds a connection may stay without an open stream (GOAWAY NO_ERROR).
    idle_timeout: Optional[float] = 60.0
    #: Seconds from connecting to the first complete request header block:
    #: slow-header (slowloris) clients are closed.
    header_timeout: Optional[float] = 10.0
    #: Seconds a handler may take to start its response (then 503), or to
    #: resume a deferred body (then RST_STREAM INTERNAL_ERROR); and a client
    #: may keep a response's flow-control window shut (then RST_STREAM CANCEL).
    response_timeout: Optional[float] = 60.0
    #: Frames that cost the server work but carry none (PING, SETTINGS,
    #: PRIORITY, empty DATA, RST_STREAM, tiny WINDOW_UPDATEs...) and streams
    #: the server resets because of the client (MadeYouReset: a body that
    #: disagrees with content-length, malformed trailers): a token bucket of
    #: ``glitch_burst`` tokens refilled at ``glitch_rate`` per second; an empty
    #: bucket closes the connection with ENHANCE_YOUR_CALM.  DATA frames under
    #: 256 bytes that do not end their stream cost a fraction of a token.
    glitch_burst: int = DEFAULT_GLITCH_LIMIT[0]
    glitch_rate: int = DEFAULT_GLITCH_LIMIT[1]
    #: RST_STREAM frames from a client (Rapid Reset, CVE-2023-44487) count as
    #: glitches; this second token bucket, in libnghttp2, ``(burst, per
    #: second)``, is a looser backstop (it answers INTERNAL_ERROR).
    stream_reset_rate: Tuple[int, int] = DEFAULT_STREAM_RESET_RATE
    #: CONTINUATION frames per header block (the 2024 CONTINUATION floods).
    max_continuations: int = DEFAULT_MAX_CONTINUATIONS

    def session_config(
        self,
        settings: Optional[Mapping[int, int]] = None,
        *,
        fallback_rfc7540_priorities: bool = False,
    ) -> SessionConfig:
        """The server side's Session options for these limits: the SETTINGS
        they imply (``settings`` added over them), windows that open as
        handlers consume the body, no WindowUpdated events, and the
        defences; libnghttp2's own limits where the linked library has them."""
        announced: dict[int, int] = {
            SettingCode.MAX_CONCURRENT_STREAMS: self.max_concurrent_streams,
            SettingCode.MAX_HEADER_LIST_SIZE: self.max_header_list_size,
            SettingCode.INITIAL_WINDOW_SIZE: self.initial_window_size,
        }
        announced.update(settings or {})
        return SessionConfig(
            settings=announced,
            auto_window_update=False,
            window_update_events=False,
            max_header_list_size=self.max_header_list_size,
            glitch_limit=(self.glitch_burst, self.glitch_rate),
            stream_reset_rate=(
                tuple(self.stream_reset_rate)  # type: ignore[arg-type]
                if FEATURES["stream_reset_rate_limit"]
                else None
            ),
            max_continuations=self.max_continuations if FEATURES["max_continuations"] else None,
            fallback_rfc7540_priorities=fallback_rfc7540_priorities,
        )

    def timers(self) -> list[float]:
        return [
            t
            for t in (
                self.settings_timeout,
                self.idle_timeout,
                self.header_timeout,
                self.response_timeout,
            )
            if t is not None
        ]
