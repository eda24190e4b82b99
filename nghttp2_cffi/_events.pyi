# The C event builder (csrc/events.c), built on CPython only.
from typing import Any, Optional

def configure(
    request_cls: type,
    response_cls: type,
    data_cls: type,
    closed_cls: type,
    ev_words: int,
    ev_none: int,
    ev_headers: int,
    ev_data: int,
    ev_closed: int,
    hcat_request: int,
    /,
) -> None: ...
def build(
    ev: int,
    start: int,
    stop: int,
    pl: int,
    data: Optional[bytes],
    out: list[Any],
    bodies: dict[int, Any],
    closing: bool,
    /,
) -> int: ...
