"""The sole bearer of a name: the last linkage pass over persons (after the scored links of ``person_link``).

A police or mediation record often names a party without an ID number and with a phone that is not their
own (a family member's, the household's fixed line, one with two digits swapped), at the place of the
incident rather than at home. No pairwise comparison links it: the phone differs and the house differs,
so only the name agrees, and a name alone never links (namesakes). But when exactly one identified person
in the data set bears the name and the record's phone belongs to that person's household, an officer would
read them as one person; the pass makes that link, kept strict:

* the name's sound (``name_sound``: traditional characters, separators and same-sounding characters
  collapse) is borne by exactly one person with a validated ID (the *bearer*) and otherwise only by persons
  without one; two identified persons sharing it stop the pass for that sound (namesakes exist);
* nothing of the unidentified person contradicts the bearer: every ID text it carries is within one edit of
  the bearer's ID, its birth date and sex (from such a text) match, and every phone it carries is a phone
  of the bearer, a phone seen at one of the bearer's houses (the household's: a family member's mobile or
  the fixed line), or the bearer's phone with one digit changed or two adjacent digits swapped. A phone
  never seen with the bearer or the bearer's household (another person's number, or an old one) stops it;
* the unidentified person must carry such a phone or such an ID text: a name alone never links, however
  rare (issue 21: namesakes without corroboration never link). Measured: a name-only variant (link when
  the name's expected bearers in the data set stay below 0.05) raised recall on the dev seeds but joined
  an unidentified namesake to the bearer of the same rare name on two seeds it had not seen (precision
  0.970 and 0.971 on records without a valid ID): on the records alone such a namesake looks exactly like
  the person, so the evidence is not there and the link is not made.

The pass runs on whole persons, so the data set's size matters: the larger it is, the fewer names have a
sole bearer, and the fewer links it makes. Returns links only; ``person_link.cluster`` applies them.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, Levenshtein

__all__ = ["sole_bearer_links"]

def _phone_ok(phone: str, own: set[str], household: set[str]) -> str | None:
    """How ``phone`` relates to the bearer: ``own`` | ``household`` | ``one_digit`` (a digit changed or two
    adjacent digits swapped, same length) | None (unrelated)."""
    if phone in own:
        return "own"
    if phone in household:
        return "household"
    if any(len(p) == len(phone) and OSA.distance(p, phone) <= 1 for p in own):
        return "one_digit"
    return None


def sole_bearer_links(mentions: pd.DataFrame, roots: np.ndarray) -> list[tuple[int, int, str]]:
    """Links ``(record, bearer_record, explanation)`` joining persons without a validated ID to the sole
    identified bearer of their name's sound. ``mentions``: prepared mentions (``person_link.prepare_mentions``);
    ``roots``: the person (root index) of every mention after the scored links. ``record`` is the first
    mention of the unidentified person, ``bearer_record`` the first of the bearer carrying the sound."""
    valid = mentions["id_valid"].to_numpy(dtype=object)
    sound = mentions["name_sound"].to_numpy(dtype=object)
    phone = mentions["phone"].to_numpy(dtype=object)
    house = mentions["house_code"].to_numpy(dtype=object)
    text = mentions["id_text"].to_numpy(dtype=object)
    birth = mentions["birth"].to_numpy(dtype=object)
    sex = mentions["sex"].to_numpy(dtype=object)
    roots = np.asarray(roots, dtype=np.int64)
    # only the sounds borne by exactly one identified person and by some other person can link (counted with
    # arrays): the loops below then run over the mentions of those sounds' persons, not over every mention
    candidate, involved = _candidates(sound, valid, roots)
    rows = np.flatnonzero(np.isin(roots, involved))
    members: dict[int, list[int]] = defaultdict(list)
    for i, r in zip(rows.tolist(), roots[rows].tolist(), strict=True):
        members[r].append(i)
    ids_of = {r: {valid[i] for i in ms if valid[i]} for r, ms in members.items()}
    by_sound: dict[str, dict[int, int]] = defaultdict(dict)   # sound -> person -> its first mention with it
    for i in np.flatnonzero(candidate).tolist():     # every person bearing a candidate sound is involved
        by_sound[sound[i]].setdefault(int(roots[i]), i)
    phones_at = _phones_at(house, phone, {house[i] for ms in members.values() for i in ms if house[i]})
    out: list[tuple[int, int, str]] = []
    joined: set[int] = set()
    for s in sorted(by_sound):
        persons = by_sound[s]
        identified = [r for r in persons if ids_of[r]]
        if len(identified) != 1 or len(persons) < 2:
            continue
        bearer = identified[0]
        bid = min(ids_of[bearer])          # a person never holds two validated IDs (person_link.cluster)
        own = {phone[i] for i in members[bearer] if phone[i]}
        household = set().union(*(phones_at[house[i]] for i in members[bearer] if house[i]))
        bbirth, bsex = _birth_sex(bid)
        for r, first in sorted(persons.items(), key=lambda kv: kv[1]):
            if r == bearer or r in joined or ids_of[r]:
                continue
            ms = members[r]
            if any(text[i] and Levenshtein.distance(text[i], bid) > 1 for i in ms):
                continue
            if any((birth[i] and birth[i] != bbirth) or (sex[i] and sex[i] != bsex) for i in ms):
                continue
            how = [_phone_ok(phone[i], own, household) for i in ms if phone[i]]
            if any(h is None for h in how):
                continue
            # a name alone never links: the person must carry a related phone or an ID text within one edit
            if not how and not any(text[i] for i in ms):
                continue
            joined.add(r)
            evidence = ",".join(sorted(set(how))) or "none"
            out.append((first, persons[bearer], f"name=sole_bearer;phone={evidence}"))
    return out


def _candidates(sound: np.ndarray, valid: np.ndarray, roots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per mention, whether its sound is a candidate (borne by exactly one identified person and by at least
    one other person); and the persons (roots) bearing a candidate sound: the only persons the pass can link
    or link to."""
    codes, _ = pd.factorize(sound, use_na_sentinel=True)
    has = (codes >= 0) & np.array([bool(v) for v in sound], dtype=bool)
    if not has.any():
        return has, np.empty(0, dtype=np.int64)
    identified = np.zeros(max(len(roots), int(roots.max()) + 1), dtype=bool)
    identified[roots[np.array([bool(v) for v in valid], dtype=bool)]] = True
    width = len(identified)
    pair = np.unique(codes[has].astype(np.int64) * width + roots[has])     # distinct (sound, person)
    ps, pr = np.divmod(pair, width)
    persons = np.bincount(ps, minlength=int(codes.max()) + 1)
    bearers = np.bincount(ps, weights=identified[pr], minlength=len(persons))
    good = (bearers == 1) & (persons >= 2)
    candidate = has & good[np.where(has, codes, 0)]
    return candidate, np.unique(pr[good[ps]])


def _phones_at(house: np.ndarray, phone: np.ndarray, houses: set) -> dict[str, set[str]]:
    """The phones seen at each of ``houses``."""
    out: dict[str, set[str]] = defaultdict(set)
    for h, p in zip(house.tolist(), phone.tolist(), strict=True):
        if p and h in houses:
            out[h].add(p)
    return out


def _birth_sex(id18: str) -> tuple[str, str]:
    return id18[6:14], "M" if int(id18[16]) % 2 else "F"
