"""Limits and timeouts of the server, with their defaults.

Every field is also a command-line flag (``--max-concurrent-streams``...).
``None`` turns a limit off.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Limits:
    #: SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have open at once.
    max_concurrent_streams: int = 100
    #: SETTINGS_MAX_HEADER_LIST_SIZE, enforced: a larger request header block
    #: (an HPACK bomb, say) closes the connection with ENHANCE_YOUR_CALM.
    max_header_list_size: int = 64 * 1024
    #: SETTINGS_INITIAL_WINDOW_SIZE: body bytes a client may send per stream
    #: before the server has read them.
    initial_window_size: int = 1024 * 1024
    #: The connection-wide receive window.
    connection_window_size: int = 16 * 1024 * 1024
    #: Request body bytes per stream: 413 when content-length says more,
    #: RST_STREAM when the body outgrows it on the way.
    max_body_size: Optional[int] = 1024 * 1024 * 1024
    #: Open connections; more are closed at once.
    max_connections: Optional[int] = 10_000
    #: Seconds for the client to acknowledge our SETTINGS (SETTINGS_TIMEOUT).
    settings_timeout: Optional[float] = 10.0
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
    glitch_burst: int = 1000
    glitch_rate: int = 100
    #: RST_STREAM frames from a client (Rapid Reset, CVE-2023-44487) count as
    #: glitches; this second token bucket, in libnghttp2, ``(burst, per
    #: second)``, is a looser backstop (it answers INTERNAL_ERROR).
    stream_reset_rate: Tuple[int, int] = (2000, 66)
    #: CONTINUATION frames per header block (the 2024 CONTINUATION floods).
    max_continuations: int = 8

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
