"""HPACK (RFC 7541): our HDDeflater/HDInflater against the independent
``hpack`` package, both ways, with the dynamic table in play."""

from __future__ import annotations

import hpack
import hypothesis
import pytest
from hypothesis import strategies as st

from nghttp2_cffi import (
    DEFAULT_HEADER_TABLE_SIZE,
    DEFLATE_MAX_HEADER_TABLE_SIZE,
    ErrorCode,
    HDDeflater,
    HDInflater,
    HDTableEntry,
    HeaderListTooLargeError,
    NGHTTP2Error,
    ProtocolError,
    lib,
    print_hd_table,
)

REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"www.example.com"),
    (b":path", b"/index.html"),
    (b"user-agent", b"nghttp2-cffi-tests/1.0"),
    (b"x-custom-key", b"custom-value"),
    (b"cookie", b"session=0123456789abcdef"),
]


def table_size(entries: list[HDTableEntry]) -> int:
    return sum(e.space() for e in entries)


# ---- constants -----------------------------------------------------------


def test_table_size_constants():
    assert DEFAULT_HEADER_TABLE_SIZE == 4096 == lib.NGHTTP2_DEFAULT_HEADER_TABLE_SIZE
    assert DEFLATE_MAX_HEADER_TABLE_SIZE == 4096


# ---- our deflate -> hpack decode --------------------------------------------


def test_deflate_decoded_by_hpack():
    block = HDDeflater().deflate(REQUEST)
    assert hpack.Decoder().decode(block, raw=True) == REQUEST


def test_deflate_reuses_dynamic_table_over_blocks():
    deflater, decoder = HDDeflater(), hpack.Decoder()
    sizes = []
    for i in range(5):
        headers = REQUEST + [(b"x-request-number", str(i).encode())]
        block = deflater.deflate(headers)
        sizes.append(len(block))
        assert decoder.decode(block, raw=True) == headers
    # The first block adds the fields to the table; later ones only index
    # them, plus one new literal each.
    assert all(size < sizes[0] // 2 for size in sizes[1:]), sizes
    names = [e.name for e in deflater.get_hd_table()]
    assert b"x-custom-key" in names and b"user-agent" in names
    # Newest entry first.
    assert deflater.get_hd_table()[0].value == b"4"


def test_deflate_str_and_bytes_input_are_the_same():
    as_str = [(n.decode(), v.decode()) for n, v in REQUEST]
    assert HDDeflater().deflate(as_str) == HDDeflater().deflate(REQUEST)


def test_deflate_lowercases_str_names_but_not_bytes():
    block = HDDeflater().deflate([("X-Mixed-Case", "Value")])
    assert hpack.Decoder().decode(block, raw=True) == [(b"x-mixed-case", b"Value")]
    block = HDDeflater().deflate([(b"X-Bytes", b"V")])
    assert hpack.Decoder().decode(block, raw=True) == [(b"X-Bytes", b"V")]


def test_deflate_non_ascii_str_is_utf8():
    block = HDDeflater().deflate([("x-name", "caf\u00e9 \u2603")])
    assert hpack.Decoder().decode(block, raw=True) == [(b"x-name", "caf\u00e9 \u2603".encode())]


def test_deflate_empty_list():
    assert HDDeflater().deflate([]) == b""
    assert HDInflater().inflate(b"") == []


def test_nul_bytes_round_trip():
    """HPACK carries any octet: NUL bytes in names and values survive our
    deflater, our inflater and the independent ``hpack`` decoder (the glue
    once joined fields with NUL and refused them)."""
    fields = [
        (b"x-a\0b", b"v"),
        (b"x-nul", b"\0"),
        (b"\0", b"\0\0middle\0\0"),
        (b"x-empty", b""),
        ("x-str\0", "caf\u00e9\0"),  # str: UTF-8, lower-cased name
    ]
    expected = [*fields[:4], (b"x-str\0", "caf\u00e9\0".encode())]
    deflater, inflater, decoder = HDDeflater(), HDInflater(), hpack.Decoder()
    for _ in range(2):  # the second time from the dynamic table
        block = deflater.deflate(fields)
        assert inflater.inflate(block) == expected
        assert decoder.decode(block, raw=True) == expected
    assert (b"\0", b"\0\0middle\0\0") in [(e.name, e.value) for e in deflater.get_hd_table()]
    # And what hpack encodes with NULs, we decode.
    assert inflater.inflate(hpack.Encoder().encode(expected)) == expected


def test_deflate_change_table_size_emits_size_update():
    deflater, decoder = HDDeflater(), hpack.Decoder()
    decoder.decode(deflater.deflate(REQUEST), raw=True)
    assert table_size(deflater.get_hd_table()) > 128
    deflater.change_table_size(128)
    block = deflater.deflate(REQUEST)
    # A dynamic table size update (001xxxxx) starts the block ...
    assert block[0] & 0xE0 == 0x20
    assert decoder.decode(block, raw=True) == REQUEST
    # ... both sides now work with at most 256 bytes.
    assert decoder.header_table_size == 128
    assert table_size(deflater.get_hd_table()) <= 128
    deflater.change_table_size(0)
    block = deflater.deflate(REQUEST)
    assert decoder.decode(block, raw=True) == REQUEST
    assert deflater.get_hd_table() == []
    assert decoder.header_table_size == 0


def test_deflate_table_capped_by_constructor():
    deflater = HDDeflater(64)
    deflater.deflate([(b"x-long-name-one", b"a" * 40), (b"x-two", b"b" * 10)])
    assert table_size(deflater.get_hd_table()) <= 64
    # A larger SETTINGS_HEADER_TABLE_SIZE from the decoder does not lift the
    # cap: the encoder only ever uses what it chose.
    deflater.change_table_size(8192)
    decoder = hpack.Decoder()
    decoder.max_allowed_table_size = 8192
    headers = [(b"x-%d" % i, b"v" * 30) for i in range(10)]
    assert decoder.decode(deflater.deflate(headers), raw=True) == headers
    assert table_size(deflater.get_hd_table()) <= 64


# ---- hpack encode -> our inflate --------------------------------------------


@pytest.mark.parametrize("huffman", [True, False])
def test_inflate_hpack_blocks(huffman: bool):
    encoder, inflater = hpack.Encoder(), HDInflater()
    for i in range(5):
        headers = REQUEST + [(b"x-request-number", str(i).encode())]
        block = encoder.encode(headers, huffman=huffman)
        assert inflater.inflate(block) == headers
    table = inflater.get_hd_table()
    assert table[0] == table[0] and table[0].name == b"x-request-number"
    assert table[0].value == b"4"
    theirs = list(encoder.header_table.dynamic_entries)
    assert [(e.name, e.value) for e in table] == theirs


def test_inflate_never_indexed_fields():
    encoder, inflater = hpack.Encoder(), HDInflater()
    block = encoder.encode([(b"authorization", b"secret", True), (b"x-ok", b"1")])
    assert inflater.inflate(block) == [(b"authorization", b"secret"), (b"x-ok", b"1")]
    assert [e.name for e in inflater.get_hd_table()] == [b"x-ok"]


def test_inflate_accepts_bytes_like():
    block = hpack.Encoder().encode(REQUEST)
    assert HDInflater().inflate(bytearray(block)) == REQUEST
    assert HDInflater().inflate(memoryview(block)) == REQUEST


def test_inflate_size_update_in_block():
    encoder, inflater = hpack.Encoder(), HDInflater()
    inflater.inflate(encoder.encode(REQUEST))
    assert len(inflater.get_hd_table()) >= 4
    encoder.header_table_size = 100
    block = encoder.encode([(b"x-a", b"1")])
    assert block[0] & 0xE0 == 0x20  # the size update leads the block
    assert inflater.inflate(block) == [(b"x-a", b"1")]
    assert table_size(inflater.get_hd_table()) <= 100
    assert inflater.get_hd_table()[0].name == b"x-a"
    assert len(inflater.get_hd_table()) < 4
    encoder.header_table_size = 0
    assert inflater.inflate(encoder.encode([(b"x-b", b"2")])) == [(b"x-b", b"2")]
    assert inflater.get_hd_table() == []


def test_inflate_size_update_above_settings_is_an_error():
    encoder, inflater = hpack.Encoder(), HDInflater()
    encoder.header_table_size = 8192  # more than our SETTINGS allow (4096)
    with pytest.raises(ProtocolError) as info:
        inflater.inflate(encoder.encode([(b"a", b"b")]))
    assert info.value.error_code == ErrorCode.COMPRESSION_ERROR
    assert info.value.code == lib.NGHTTP2_ERR_HEADER_COMP


def test_inflate_change_table_size_allows_larger_table():
    encoder, inflater = hpack.Encoder(), HDInflater()
    inflater.change_table_size(8192)
    encoder.header_table_size = 8192
    headers = [(b"x-%d" % i, b"v" * 100) for i in range(50)]
    assert inflater.inflate(encoder.encode(headers)) == headers
    assert 4096 < table_size(inflater.get_hd_table()) <= 8192


def test_inflate_shrunk_table_needs_size_update():
    # Once our SETTINGS_HEADER_TABLE_SIZE shrank below what the encoder
    # uses, its next block must start with a size update (RFC 7541 4.2).
    encoder, inflater = hpack.Encoder(), HDInflater()
    inflater.inflate(encoder.encode(REQUEST))
    inflater.change_table_size(64)
    stale = hpack.Encoder()  # knows nothing of the change: no size update
    with pytest.raises(ProtocolError) as info:
        inflater.inflate(stale.encode([(b"x-a", b"1")]))
    assert info.value.error_code == ErrorCode.COMPRESSION_ERROR

    encoder, inflater = hpack.Encoder(), HDInflater()
    inflater.inflate(encoder.encode(REQUEST))
    inflater.change_table_size(64)
    encoder.header_table_size = 64
    assert inflater.inflate(encoder.encode([(b"x-a", b"1")])) == [(b"x-a", b"1")]
    assert table_size(inflater.get_hd_table()) <= 64


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b"\x80", id="index-0"),
        pytest.param(b"\xbf", id="index-beyond-table"),
        pytest.param(b"\xff", id="truncated-integer"),
        pytest.param(b"\x3f\xff\xff\xff\xff\xff\xff", id="integer-overflow"),
        pytest.param(b"\x40\x05abc", id="truncated-literal"),
        pytest.param(b"\x00\x81", id="truncated-huffman-name"),
        pytest.param(b"\x40\x81\xff\x00", id="bad-huffman-eos"),
        pytest.param(b"\x82\x3f\xe1\x1f", id="size-update-after-field"),
    ],
)
def test_inflate_malformed_block_raises_nghttp2_error(block: bytes):
    with pytest.raises(NGHTTP2Error) as info:
        HDInflater().inflate(block)
    exc = info.value
    assert type(exc) is not Exception
    assert isinstance(exc, ProtocolError)
    assert exc.code == lib.NGHTTP2_ERR_HEADER_COMP
    assert exc.error_code == ErrorCode.COMPRESSION_ERROR
    assert "compression" in str(exc).lower()


def test_inflate_empty_fields():
    block = HDDeflater().deflate([(b"", b""), (b"x", b"")])
    assert HDInflater().inflate(block) == [(b"", b""), (b"x", b"")]


def test_deflate_inflate_large_values():
    # nghttp2's inflater takes fields up to 64 KiB (NGHTTP2_HD_MAX_NV); the
    # list (~68 KB) is over the default max_header_list_size, lifted here.
    deflater, inflater = HDDeflater(), HDInflater(max_header_list_size=None)
    headers = [(b"x-big", b"z" * 60_000), (b"x-small", b"1")] + [
        (b"x-%d" % i, b"%d" % i) for i in range(200)
    ]
    for _ in range(3):
        assert inflater.inflate(deflater.deflate(headers)) == headers


def test_inflate_stops_an_hpack_bomb():
    """A 16 KB block of one-byte references to a 4 KiB table entry would
    inflate to ~16 MB: the inflater stops at max_header_list_size."""
    stored = hpack.Encoder().encode([(b"x-bomb", b"a" * 4000)], huffman=False)
    bomb = stored + b"\xbe" * 4000  # index 62: the stored field
    with pytest.raises(HeaderListTooLargeError, match=r"max_header_list_size \(65536 bytes\)"):
        HDInflater().inflate(bomb)
    # The bound is RFC 9113's count (name + value + 32 per field), and can move.
    fields = [(b"x-bomb", b"a" * 4000)] * 20  # 20 * 4038 bytes
    block = stored + b"\xbe" * 19
    assert HDInflater(max_header_list_size=20 * 4038).inflate(block) == fields
    with pytest.raises(HeaderListTooLargeError) as info:
        HDInflater(max_header_list_size=20 * 4038 - 1).inflate(block)
    assert info.value.limit == 20 * 4038 - 1
    assert HDInflater(max_header_list_size=None).inflate(bomb)[-1] == fields[0]


def test_inflate_field_above_64k_is_refused():
    block = hpack.Encoder().encode([(b"x-huge", b"z" * 70_000)], huffman=False)
    with pytest.raises(ProtocolError) as info:
        HDInflater().inflate(block)
    assert info.value.error_code == ErrorCode.COMPRESSION_ERROR


# ---- tables and printing -------------------------------------------------------


def test_get_hd_table_entries_match_between_sides():
    deflater, inflater = HDDeflater(), HDInflater()
    inflater.inflate(deflater.deflate(REQUEST))
    ours = [(e.name, e.value, e.namelen, e.valuelen) for e in deflater.get_hd_table()]
    theirs = [(e.name, e.value, e.namelen, e.valuelen) for e in inflater.get_hd_table()]
    assert ours == theirs
    assert ours, "the request must have added dynamic entries"
    for name, value, namelen, valuelen in ours:
        assert (len(name), len(value)) == (namelen, valuelen)
        assert (name, value) in REQUEST
    # Static-table hits (:method GET, :scheme https) never enter the table.
    assert (b":method", b"GET", 7, 3) not in ours


def test_hd_table_entry_space_and_repr():
    entry = HDTableEntry(b"x-a", 3, b"hello", 5)
    assert entry.space() == 3 + 5 + 32
    assert repr(entry) == "HDTableEntry(b'x-a', b'hello')"


def test_print_hd_table(capsys: pytest.CaptureFixture[str]):
    deflater = HDDeflater()
    deflater.deflate([(b"x-first", b"1"), (b"x-second", b"22")])
    print_hd_table(deflater.get_hd_table())
    assert capsys.readouterr().out == ("[1] (s=42) x-second: 22\n[2] (s=40) x-first: 1\n")
    print_hd_table([])
    assert capsys.readouterr().out == ""


def test_print_hd_table_with_binary_values(capsys: pytest.CaptureFixture[str]):
    inflater = HDInflater()
    inflater.inflate(
        hpack.Encoder().encode([(b"x-bin", b"\xff\xfeok"), (b"x-utf8", "\u00e9".encode())])
    )
    print_hd_table(inflater.get_hd_table())
    assert capsys.readouterr().out == (
        "[1] (s=40) x-utf8: \u00e9\n[2] (s=41) x-bin: \\xff\\xfeok\n"
    )


# ---- property tests ----------------------------------------------------------

# hypothesis is a test dependency (the test extra, on PyPy too).
_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=20)
_name = st.one_of(
    _token.map(str.encode),
    st.sampled_from([b":path", b":method", b"content-type", b"cookie", b"accept"]),
    st.binary(max_size=12),  # HPACK carries any octets, NUL included
)
_value = st.binary(max_size=60)
_headers = st.lists(st.tuples(_name, _value), max_size=12)
_blocks = st.lists(_headers, min_size=1, max_size=6)
_settings = hypothesis.settings(max_examples=200, deadline=None)


@_settings
@hypothesis.given(blocks=_blocks)
def test_property_deflate_then_hpack_decode(blocks: list):
    deflater, decoder = HDDeflater(), hpack.Decoder()
    for headers in blocks:
        assert decoder.decode(deflater.deflate(headers), raw=True) == headers


@_settings
@hypothesis.given(blocks=_blocks, huffman=st.booleans())
def test_property_hpack_encode_then_inflate(blocks: list, huffman: bool):
    encoder, inflater = hpack.Encoder(), HDInflater()
    for headers in blocks:
        assert inflater.inflate(encoder.encode(headers, huffman=huffman)) == headers


@_settings
@hypothesis.given(blocks=_blocks, sizes=st.lists(st.integers(0, 4096), min_size=1, max_size=6))
def test_property_round_trip_with_table_size_changes(blocks: list, sizes: list):
    deflater, inflater = HDDeflater(), HDInflater()
    for headers, size in zip(blocks, sizes):
        deflater.change_table_size(size)
        assert inflater.inflate(deflater.deflate(headers)) == headers
        assert table_size(inflater.get_hd_table()) <= size
        assert [(e.name, e.value) for e in inflater.get_hd_table()] == [
            (e.name, e.value) for e in deflater.get_hd_table()
        ]
