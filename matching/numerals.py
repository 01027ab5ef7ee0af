"""Chinese numerals in addresses: digit by digit (五零三, 一〇二), positional (二十三, 一百零五, 两) and mixed
with Arabic digits (五0一, 二十3).

:func:`cn_to_int` is strict: a run that is not a well-formed numeral gives ``None`` (the address parser then
leaves the component empty rather than guessing a number). Results are cached: the same short runs recur
across millions of addresses.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["CN_DIGITS", "CN_UNITS", "NUMERAL_CHARS", "cn_to_int", "numeral_to_digits"]

CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4,
             "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
CN_UNITS = {"十": 10, "百": 100, "千": 1000}
NUMERAL_CHARS = "".join(CN_DIGITS) + "".join(CN_UNITS)


def _digit(ch: str) -> int | None:
    if ch in CN_DIGITS:
        return CN_DIGITS[ch]
    if "0" <= ch <= "9":
        return ord(ch) - 48
    return None


@lru_cache(maxsize=65536)
def cn_to_int(text: str) -> int | None:
    """A Chinese (or mixed Chinese/Arabic) numeral as an int; None if ``text`` is not one.

    ``五零一`` -> 501 (digit by digit), ``十二`` -> 12, ``二十一`` -> 21, ``一百零五`` -> 105, ``两`` -> 2,
    ``一百一`` -> 110 (the colloquial omitted unit), ``五0一`` -> 501; ``十二三``, ``百`` or ``元`` -> None.
    """
    if not text:
        return None
    if not any(ch in CN_UNITS for ch in text):          # digit by digit
        if "两" in text and len(text) > 1:              # 两 counts (两百, 两房), it is never a digit of 502
            return None
        digits = [_digit(ch) for ch in text]
        if any(d is None for d in digits):
            return None
        return int("".join(map(str, digits)))
    total, cur, last_unit, zero = 0, None, 10 ** 9, False
    for i, ch in enumerate(text):
        if ch in CN_UNITS:
            unit = CN_UNITS[ch]
            if unit >= last_unit:
                return None
            if cur is None:
                if unit != 10 or i != 0:                 # only a leading 十 stands without a digit
                    return None
                cur = 1
            total += cur * unit
            cur, last_unit, zero = None, unit, False
            continue
        d = _digit(ch)
        if d is None:
            return None
        if d == 0 and ch != "0" or (d == 0 and cur is None and total):
            if cur is not None or last_unit == 10:        # 五十零一 is not a numeral
                return None
            zero = True
            continue
        if cur is not None:
            return None                                   # two digits in a row inside a positional numeral
        cur = d
    if cur is not None:
        if zero or last_unit == 10:
            total += cur
        else:                                             # 一百一 = 110, 一千二 = 1200
            total += cur * (last_unit // 10)
    return total


def numeral_to_digits(text: str) -> str | None:
    """:func:`cn_to_int` as a digit string (None when not a numeral); leading zeros of a digit-by-digit
    numeral are dropped like the parser drops them from Arabic numbers."""
    n = cn_to_int(text)
    return None if n is None else str(n)
