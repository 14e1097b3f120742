"""Quantities with units, parsed in one place.

Everything inside lepsim is SI: seconds, bytes, bytes/s, FLOP/s, events per second.
Scenario files may write quantities as strings with units; this module turns them into
floats and raises :class:`UnitError` with a precise message otherwise.

Accepted forms (whitespace between number and unit is allowed):

* durations: ``"90s"``, ``"250ms"``, ``"6h"``, ``"1.5d"``, ``"30min"``, ``"2h30m"``,
  ``"1us"``; plain numbers are seconds.  Units: ns, us, ms, s, m/min, h, d, w.
* rates: ``"20/h"``, ``"0.5/s"``, ``"3/min"``, ``"100/d"`` → events per second; plain
  numbers are per second.
* sizes: ``"80GiB"``, ``"40GB"``, ``"512MiB"``, ``"1.5TB"``, ``"100B"`` → bytes (SI prefixes
  are powers of 1000, binary prefixes powers of 1024); plain numbers are bytes.
* bandwidths: ``"25GB/s"``, ``"100Gb/s"``, ``"25Gbps"``, ``"900GiB/s"`` → bytes per second
  (lower-case ``b`` means bits); plain numbers are bytes per second.
"""
from __future__ import annotations

import math
import re

__all__ = [
    "UnitError",
    "parse_duration",
    "parse_rate",
    "parse_bytes",
    "parse_bandwidth",
    "format_duration",
]


class UnitError(ValueError):
    """A quantity could not be parsed; the message says what was expected."""


_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_DURATION_TERM = re.compile(rf"\s*({_NUM})\s*([a-zµ]+)\s*", re.IGNORECASE)

_SIZE_PREFIX = {
    "": 1.0,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
    "Pi": 1024.0**5,
}
_PREFIX_RE = r"(Ki|Mi|Gi|Ti|Pi|[kKMGTP]|)"
_SIZE_RE = re.compile(rf"^\s*({_NUM})\s*{_PREFIX_RE}([Bb])\s*$")
_BW_RE = re.compile(rf"^\s*({_NUM})\s*{_PREFIX_RE}(B/s|b/s|bps|Bps)\s*$")
_RATE_RE = re.compile(rf"^\s*({_NUM})\s*/\s*({_NUM})?\s*([a-zµ]+)\s*$", re.IGNORECASE)

_DURATION_HELP = "a duration such as 90s, 250ms, 30min, 6h or 1.5d"
_RATE_HELP = "a rate such as 20/h, 0.5/s or 3/min"
_SIZE_HELP = "a size such as 80GiB, 40GB or 512MiB"
_BW_HELP = "a bandwidth such as 25GB/s, 100Gb/s or 25Gbps"


def _plain_number(value: object, what: str) -> float | None:
    if isinstance(value, bool):
        raise UnitError(f"found {value!r}, expected {what}")
    if isinstance(value, (int, float)):
        v = float(value)
        if not math.isfinite(v):
            raise UnitError(f"found {value!r}, expected {what} (finite)")
        return v
    if not isinstance(value, str):
        raise UnitError(f"found {type(value).__name__} {value!r}, expected {what}")
    try:
        v = float(value)
    except ValueError:
        return None
    if not math.isfinite(v):
        raise UnitError(f"found {value!r}, expected {what} (finite)")
    return v


def parse_duration(value: object) -> float:
    """Duration → seconds. ``"2h30m"`` combines terms; a bare number is seconds."""
    v = _plain_number(value, _DURATION_HELP)
    if v is not None:
        return v
    text = str(value).strip()
    pos, total, seen = 0, 0.0, False
    while pos < len(text):
        m = _DURATION_TERM.match(text, pos)
        if not m:
            break
        unit = m.group(2).lower()
        if unit not in _DURATION_UNITS:
            raise UnitError(f"found {value!r}: unknown time unit {m.group(2)!r}, expected {_DURATION_HELP}")
        total += float(m.group(1)) * _DURATION_UNITS[unit]
        pos, seen = m.end(), True
    if not seen or pos != len(text):
        raise UnitError(f"found {value!r}, expected {_DURATION_HELP}")
    return total


def parse_rate(value: object) -> float:
    """Rate → events per second. ``"20/h"`` = 20 per hour; a bare number is per second."""
    v = _plain_number(value, _RATE_HELP)
    if v is not None:
        return v
    m = _RATE_RE.match(str(value))
    if not m:
        raise UnitError(f"found {value!r}, expected {_RATE_HELP}")
    unit = m.group(3).lower()
    if unit not in _DURATION_UNITS:
        raise UnitError(f"found {value!r}: unknown time unit {m.group(3)!r}, expected {_RATE_HELP}")
    per = float(m.group(2)) if m.group(2) else 1.0
    if per <= 0:
        raise UnitError(f"found {value!r}, expected {_RATE_HELP} with a positive period")
    return float(m.group(1)) / (per * _DURATION_UNITS[unit])


def parse_bytes(value: object) -> float:
    """Size → bytes. SI prefixes are powers of 1000, ``Ki``/``Mi``/``Gi`` powers of 1024."""
    v = _plain_number(value, _SIZE_HELP)
    if v is not None:
        return v
    m = _SIZE_RE.match(str(value))
    if not m:
        raise UnitError(f"found {value!r}, expected {_SIZE_HELP}")
    factor = _SIZE_PREFIX[m.group(2)] * (1.0 if m.group(3) == "B" else 0.125)
    return float(m.group(1)) * factor


def parse_bandwidth(value: object) -> float:
    """Bandwidth → bytes per second. ``b`` (lower case) or ``bps`` means bits."""
    v = _plain_number(value, _BW_HELP)
    if v is not None:
        return v
    m = _BW_RE.match(str(value))
    if not m:
        raise UnitError(f"found {value!r}, expected {_BW_HELP}")
    bits = m.group(3) in ("b/s", "bps")
    return float(m.group(1)) * _SIZE_PREFIX[m.group(2)] * (0.125 if bits else 1.0)


def format_duration(seconds: float) -> str:
    """Short human form for reports: ``3725`` → ``"1h2m5s"``."""
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 1:
        return f"{seconds * 1000:.3g}ms"
    s = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    if s or not parts:
        parts.append(f"{s}s")
    return "".join(parts)
