"""argparse ``type=`` converters shared by the commands.

argparse prefixes each message with the option (``argument --jobs: ...``), so the
messages say only what was expected and what was given.
"""

from __future__ import annotations

import argparse
from typing import Callable


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value}")
    return value


def positive_int_at_most(maximum: int) -> Callable[[str], int]:
    """A converter of whole numbers from 1 to ``maximum``.

    For counts whose absurd values would fail deep inside (an allocation, a C int) or
    run for ever; the bound belongs in the option's help text.
    """
    def convert(text: str) -> int:
        value = positive_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected an integer from 1 to {maximum}; got "
                                             f"{short_int(value)}")
        return value

    convert.__name__ = convert.__qualname__ = f"positive_int_at_most_{maximum}"
    return convert


def short_int(value: int) -> str:
    """``value`` for a message: in full up to 40 digits, else its first 20 and its length
    (Python parses integers of up to 4300 digits)."""
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"


def positive_seconds(text: str) -> float:
    """A number of seconds > 0."""
    return _seconds(text, allow_zero=False)


def non_negative_seconds(text: str) -> float:
    """A number of seconds >= 0."""
    return _seconds(text, allow_zero=True)


def _seconds(text: str, *, allow_zero: bool) -> float:
    bound = ">= 0" if allow_zero else "> 0"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds {bound}; got {text!r}") from None
    if not (value >= 0 if allow_zero else value > 0):  # also rejects nan
        raise argparse.ArgumentTypeError(f"expected a number of seconds {bound}; got {text}")
    if value > 86400:  # also rejects inf (time.sleep would overflow; a day is no option)
        raise argparse.ArgumentTypeError(f"expected at most 86400 seconds (a day); got {text}")
    return value


def byte_size(text: str, *, minimum: int = 256 << 20) -> int:
    """'2G', '512M', '0' (no limit) or a number of bytes -> bytes (0 or >= ``minimum``)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    clean = text.strip().upper().removesuffix("IB").removesuffix("B")
    try:
        if clean and clean[-1] in units:
            value = int(float(clean[:-1]) * units[clean[-1]])
        else:
            value = int(clean)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 2G or 512M; got {text!r}") from None
    if value != 0 and value < minimum:
        raise argparse.ArgumentTypeError(f"expected 0 (no limit) or at least {minimum >> 20}M; "
                                         f"got {text!r}")
    return value
