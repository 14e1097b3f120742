"""lepsim.units: quantities with units → SI floats, and precise errors otherwise."""
from __future__ import annotations

import math

import pytest

from lepsim.units import UnitError, format_duration, parse_bandwidth, parse_bytes, parse_duration, parse_rate

GiB = 2**30


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90.0), ("90 s", 90.0), ("1sec", 1.0), ("250ms", 0.25), ("1us", 1e-6), ("1µs", 1e-6), ("5ns", 5e-9),
    ("30min", 1800.0), ("30m", 1800.0), ("6h", 21600.0), ("2hr", 7200.0), ("1.5d", 129600.0), ("1w", 604800.0),
    ("2h30m", 9000.0), ("2h 30m", 9000.0), ("1d2h3m4s", 93784.0), ("1h500ms", 3600.5),
    ("2H", 7200.0), ("1.5 h", 5400.0), (".5h", 1800.0), ("1e3s", 1000.0), ("1e-3s", 1e-3),
    (90, 90.0), (1.25, 1.25), (0, 0.0), ("42", 42.0), ("2.5", 2.5), ("1e3", 1000.0),
])
def test_parse_duration(text, seconds) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-15, abs=0)
    assert isinstance(parse_duration(text), float)


@pytest.mark.parametrize("text, per_second", [
    ("20/h", 20 / 3600), ("0.5/s", 0.5), ("3/min", 0.05), ("100/d", 100 / 86400), ("7/w", 7 / 604800),
    ("5/2h", 5 / 7200), ("1/30min", 1 / 1800), ("20 / h", 20 / 3600), ("60/m", 1.0), ("1000/ms", 1e6),
    (2, 2.0), (0.25, 0.25), ("3", 3.0),
])
def test_parse_rate(text, per_second) -> None:
    assert parse_rate(text) == pytest.approx(per_second, rel=1e-15, abs=0)


@pytest.mark.parametrize("text, nbytes", [
    ("100B", 100.0), ("1kB", 1e3), ("1KB", 1e3), ("1MB", 1e6), ("40GB", 40e9), ("1.5TB", 1.5e12), ("2PB", 2e15),
    ("1KiB", 1024.0), ("512MiB", 512 * 2**20), ("80GiB", 80 * GiB), ("2TiB", 2 * 2**40), ("1PiB", 2**50),
    ("80 GiB", 80 * GiB), ("8b", 1.0), ("8Gb", 1e9), ("1Kib", 128.0),
    (4096, 4096.0), ("4096", 4096.0), (1.5e9, 1.5e9),
])
def test_parse_bytes(text, nbytes) -> None:
    assert parse_bytes(text) == pytest.approx(nbytes, rel=1e-15, abs=0)


def test_si_and_binary_prefixes_differ() -> None:
    assert parse_bytes("1GiB") / parse_bytes("1GB") == pytest.approx(1.073741824, rel=1e-15)
    assert parse_bytes("1TiB") - parse_bytes("1TB") == 2**40 - 10**12


@pytest.mark.parametrize("text, bytes_per_s", [
    ("25GB/s", 25e9), ("100Gb/s", 12.5e9), ("25Gbps", 3.125e9), ("900GiB/s", 900 * GiB), ("10Bps", 10.0),
    ("400 Gb/s", 50e9), ("1MiB/s", 2**20), ("8Mib/s", 2**20), ("1kb/s", 125.0),
    (1e9, 1e9), ("12.5e9", 12.5e9),
])
def test_parse_bandwidth(text, bytes_per_s) -> None:
    assert parse_bandwidth(text) == pytest.approx(bytes_per_s, rel=1e-15, abs=0)


def test_bits_versus_bytes() -> None:
    assert parse_bandwidth("100Gb/s") * 8 == parse_bandwidth("100GB/s")
    assert parse_bandwidth("100Gbps") == parse_bandwidth("100Gb/s")
    assert parse_bytes("64Gb") * 8 == parse_bytes("64GB")


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("parser, value, expected", [
    (parse_duration, "2q", "a duration such as"),
    (parse_duration, "2h30", "a duration such as"),     # a trailing number without unit
    (parse_duration, "h", "a duration such as"),
    (parse_duration, "", "a duration such as"),
    (parse_duration, "1 2h", "a duration such as"),
    (parse_duration, "1,5h", "a duration such as"),
    (parse_duration, "six hours", "a duration such as"),
    (parse_rate, "20/x", "a rate such as"),
    (parse_rate, "20h", "a rate such as"),
    (parse_rate, "/h", "a rate such as"),
    (parse_rate, "20/0h", "positive period"),
    (parse_bytes, "80GX", "a size such as"),
    (parse_bytes, "80G", "a size such as"),
    (parse_bytes, "GiB", "a size such as"),
    (parse_bytes, "80 gigabytes", "a size such as"),
    (parse_bandwidth, "25GB", "a bandwidth such as"),
    (parse_bandwidth, "25G/s", "a bandwidth such as"),
    (parse_bandwidth, "fast", "a bandwidth such as"),
])
def test_malformed_input_message(parser, value, expected) -> None:
    with pytest.raises(UnitError) as info:
        parser(value)
    msg = str(info.value)
    assert msg.startswith(f"found {value!r}")      # names the input
    assert expected in msg                          # says what was expected
    assert isinstance(info.value, ValueError)       # pydantic turns it into a field error


def test_unknown_unit_is_named() -> None:
    with pytest.raises(UnitError, match=r"^found '2q': unknown time unit 'q', expected a duration such as 90s"):
        parse_duration("2q")
    with pytest.raises(UnitError, match=r"^found '20/x': unknown time unit 'x', expected a rate such as 20/h"):
        parse_rate("20/x")
    with pytest.raises(UnitError, match=r"unknown time unit 'fortnight'"):
        parse_duration("1fortnight")


@pytest.mark.parametrize("parser", [parse_duration, parse_rate, parse_bytes, parse_bandwidth])
@pytest.mark.parametrize("value, shown", [
    (True, "found True"), (False, "found False"), (None, "found NoneType None"),
    (float("nan"), "found nan"), (float("inf"), "found inf"), (-math.inf, "found -inf"),
    ("nan", "found 'nan'"), ("inf", "found 'inf'"), ("-Infinity", "found '-Infinity'"),
    ([1, 2], "found list [1, 2]"), ({"a": 1}, "found dict"),
])
def test_non_quantities_rejected(parser, value, shown) -> None:
    with pytest.raises(UnitError) as info:
        parser(value)
    msg = str(info.value)
    assert msg.startswith(shown), msg
    assert "expected a" in msg


@pytest.mark.parametrize("parser, value, expected", [
    (parse_bytes, "1kiB", "a size such as"),          # binary prefixes are Ki, Mi, Gi...: upper case
    (parse_bytes, "1gib", "a size such as"),
    (parse_bandwidth, "1kib/s", "a bandwidth such as"),
    (parse_bandwidth, "1kiB/s", "a bandwidth such as"),
])
def test_lowercase_binary_prefix_rejected(parser, value, expected) -> None:
    with pytest.raises(UnitError) as info:   # a UnitError, not a KeyError
        parser(value)
    assert str(info.value).startswith(f"found {value!r}, expected {expected}")


# ----------------------------------------------------------------------------- format_duration
@pytest.mark.parametrize("seconds, text", [
    (3725, "1h2m5s"), (0.25, "250ms"), (0.0, "0ms"), (0.0015, "1.5ms"), (1.0, "1s"), (59.4, "59s"),
    (59.6, "1m"), (60, "1m"), (3600, "1h"), (86400, "1d"), (90061, "1d1h1m1s"), (172800 + 59, "2d59s"),
    (7 * 86400, "7d"), (math.inf, "inf"), (math.nan, "nan"),
])
def test_format_duration(seconds, text) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [1, 59, 61, 3599, 3601, 86399, 90061, 1_000_000])
def test_format_duration_round_trips(seconds) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
