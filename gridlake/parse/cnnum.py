"""Chinese numerals as written in dates and counts (二〇二六, 十一, 二十三, 两, 三十一)."""

from __future__ import annotations

import re

DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
          "八": 8, "九": 9}
CN_CHARS = "".join(DIGITS) + "十百"
CN_RUN = re.compile(f"[{CN_CHARS}]+")


def cn_to_int(text: str) -> int | None:
    """The value of a small Chinese numeral (below 1,000), or digit by digit (二〇二六 -> 2026); None if not one.

    ``十一`` -> 11, ``二十三`` -> 23, ``一百零五`` -> 105, ``两`` -> 2, ``二〇二六`` -> 2026.
    """
    if not text or any(c not in DIGITS and c not in "十百" for c in text):
        return None
    if "十" not in text and "百" not in text:
        value = 0
        for c in text:
            value = value * 10 + DIGITS[c]
        return value
    hundreds = 0
    if "百" in text:
        head, _, text = text.partition("百")
        if head not in DIGITS or DIGITS[head] == 0 or "百" in text:
            return None
        hundreds = DIGITS[head] * 100
        if text[:1] in ("零", "〇"):
            text = text[1:]
            if not text or len(text) != 1:
                return None if text else hundreds
        elif text and "十" not in text:
            return None  # 一百五 (150) is colloquial: not guessed
        if not text:
            return hundreds
    m = re.fullmatch(r"(?:(?P<t>[一二两三四五六七八九])?(?P<ten>十))?(?P<u>[一二三四五六七八九])?", text)
    if not m or not text or (hundreds and m["ten"] and not m["t"]):
        return None
    tens = (DIGITS[m["t"]] if m["t"] else 1) if m["ten"] else 0
    units = DIGITS[m["u"]] if m["u"] else 0
    return hundreds + tens * 10 + units


def replace_cn_numbers(text: str) -> tuple[str, bool]:
    """``text`` with each run of Chinese numerals replaced by Arabic digits; True when anything was replaced."""
    changed = False

    def sub(m: re.Match[str]) -> str:
        nonlocal changed
        v = cn_to_int(m.group(0))
        if v is None:
            return m.group(0)
        changed = True
        return str(v)

    return CN_RUN.sub(sub, text), changed
