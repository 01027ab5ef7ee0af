"""Synthetic persons: GB 11643 ID numbers, names and mobile phones, generated in numpy blocks.

A person is an index into the pool. The pool keeps the 18-digit ID (as bytes), the birth year,
name parts and phone; rendering to text (with noise) happens only when a record is written.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from tools.generate import lexicon as lx

_W = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_EPOCH = dt.date(1970, 1, 1)


def _check_digits(digits17: np.ndarray) -> np.ndarray:
    """Check characters (uint8 ASCII) for an (n, 17) array of digit values."""
    return _CHECK[(digits17.astype(np.int64) @ _W) % 11]


class PersonPool:
    """Growable columnar store of persons (deterministic given the rng and call order)."""

    def __init__(self, rng: np.random.Generator, today: dt.date) -> None:
        self.rng = rng
        self.today = today
        self.n = 0
        self.ids = np.empty(0, dtype="S18")
        self.birth_year = np.empty(0, dtype=np.int16)
        self.surname = np.empty(0, dtype=np.int16)
        self.given = np.empty((0, 2), dtype=np.int16)  # -1 = no second char; >= len(GIVEN) = rare char
        self.phone = np.empty(0, dtype=np.int64)
        self._seen: set[bytes] = set()

    def new(self, k: int, local_share: float = 0.25) -> np.ndarray:
        """Create ``k`` new persons with unique IDs; return their indexes."""
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        rng = self.rng
        ids = np.empty(0, dtype="S18")
        while len(ids) < k:
            m = k - len(ids) + 16
            ids = np.concatenate([ids, self._draw_ids(m, local_share)])
            ids = ids[np.sort(np.unique(ids, return_index=True)[1])]
            if self._seen:
                ids = ids[np.array([i not in self._seen for i in ids.tolist()], dtype=bool)]
        ids = ids[:k]
        self._seen.update(ids.tolist())
        years = np.array([int(i[6:10]) for i in ids.tolist()], dtype=np.int16)
        sur = rng.integers(0, len(lx.SURNAMES), k).astype(np.int16)
        g = rng.integers(0, len(lx.GIVEN), (k, 2)).astype(np.int16)
        g[rng.random(k) < 0.3, 1] = -1
        g[rng.random(k) < 0.01, 0] = len(lx.GIVEN) + rng.integers(0, len(lx.RARE_GIVEN))
        pre = rng.integers(0, len(lx.MOBILE_PREFIXES), k)
        phone = np.array([int(lx.MOBILE_PREFIXES[p]) for p in pre], dtype=np.int64) * 10**8 + rng.integers(
            0, 10**8, k
        )
        start = self.n
        self.ids = np.concatenate([self.ids, ids])
        self.birth_year = np.concatenate([self.birth_year, years])
        self.surname = np.concatenate([self.surname, sur])
        self.given = np.concatenate([self.given, g])
        self.phone = np.concatenate([self.phone, phone])
        self.n += k
        return np.arange(start, self.n, dtype=np.int64)

    def _draw_ids(self, m: int, local_share: float) -> np.ndarray:
        rng = self.rng
        local = rng.random(m) < local_share
        reg = np.where(
            local,
            np.array(lx.REGIONS_SZ)[rng.integers(0, len(lx.REGIONS_SZ), m)],
            np.array(lx.REGIONS_OTHER)[rng.integers(0, len(lx.REGIONS_OTHER), m)],
        )
        # ages 18..85, a bit more weight on 25..45
        age_days = np.where(
            rng.random(m) < 0.6, rng.integers(25 * 365, 45 * 365, m), rng.integers(18 * 365, 85 * 365, m)
        )
        birth = (np.datetime64(self.today) - age_days.astype("timedelta64[D]")).astype("datetime64[D]")
        bstr = np.char.replace(np.datetime_as_string(birth, unit="D").astype("U10"), "-", "")
        seq = np.char.zfill(rng.integers(0, 1000, m).astype("U3"), 3)
        first17 = np.char.add(np.char.add(reg.astype("U6"), bstr), seq).astype("S17")
        digits = np.frombuffer(first17.tobytes(), dtype=np.uint8).reshape(m, 17) - ord("0")
        check = _check_digits(digits)
        return np.char.add(first17, check.view("S1")).astype("S18")

    # --- rendering ---------------------------------------------------------------------------
    def id18(self, p: int) -> str:
        """The true 18-digit ID of person ``p``."""
        return self.ids[p].decode()

    def name(self, p: int) -> str:
        """The person's name, e.g. 张伟 or 欧阳思雨."""
        g0, g1 = self.given[p]
        first = lx.RARE_GIVEN[g0 - len(lx.GIVEN)] if g0 >= len(lx.GIVEN) else lx.GIVEN[g0]
        return lx.SURNAMES[self.surname[p]] + first + (lx.GIVEN[g1] if g1 >= 0 else "")

    def has_rare_char(self, p: int) -> bool:
        """True when the name has a character outside GBK."""
        return bool(self.given[p, 0] >= len(lx.GIVEN))


def id_forms(id18: str, birth_year: int, u: float, noise: dict) -> tuple[str, str]:
    """Deliver an ID in one of its forms; return (text, kind).

    Kinds: ``id18`` (as is), ``id15_legacy`` (valid 15-digit, born 19xx), ``id_lower_x`` (valid),
    ``id_bad_checksum`` (invalid). ``u`` is a uniform draw in [0, 1).
    """
    bad = noise["bad_checksum_rate"]
    legacy = noise["legacy15_rate"]
    if u < bad:
        wrong = "0123456789X".replace(id18[17], "")
        return id18[:17] + wrong[int(u / bad * len(wrong)) % len(wrong)], "id_bad_checksum"
    if u < bad + legacy and 1900 <= birth_year <= 1999:
        return id18[:6] + id18[8:17], "id15_legacy"
    if id18[17] == "X" and u > 1 - noise["lower_x_rate"]:
        return id18[:17] + "x", "id_lower_x"
    return id18, "id18"


def phone_form(phone: int, u: float, rate: float) -> tuple[str, str]:
    """A mobile number in one of the forms people write: plain, +86, spaces, dashes."""
    s = str(phone)
    if u >= rate:
        return s, "phone_plain"
    k = int(u / rate * 6)
    forms = [
        f"+86 {s[:3]} {s[3:7]} {s[7:]}", f"+86-{s}", f"{s[:3]}-{s[3:7]}-{s[7:]}",
        f"{s[:3]} {s[3:7]} {s[7:]}", f"0086{s}", f"+86{s}",
    ]
    return forms[k], "phone_format"
