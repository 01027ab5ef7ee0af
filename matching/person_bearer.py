"""The sole bearer of a name: the last linkage pass over persons (after the scored links of ``person_link``).

A police or mediation record often names a party by name alone: no ID number, no phone or a phone that is
not their own (a family member's, the household's, one with two digits swapped), at the place of the
incident rather than at home. No pairwise comparison can link it: its only evidence is the name, and a name
alone never links (namesakes). But an officer reading the record would not treat the name as anonymous when
exactly one known person in the whole data set bears it: that is the term-frequency argument (an agreement
on a rare name is strong evidence, on 张伟 none), taken to its limit and kept strict:

* the name's sound (``name_sound``: traditional characters, separators and same-sounding characters
  collapse) is borne by exactly one person with a validated ID (the *bearer*) and otherwise only by persons
  without one; two identified persons sharing it stop the pass for that sound (namesakes exist);
* nothing of the unidentified person contradicts the bearer: every ID text it carries is within one edit of
  the bearer's ID, its birth date and sex (from such a text) match, and every phone it carries is a phone
  of the bearer, a phone seen at one of the bearer's houses (the household's: a family member's mobile or
  the fixed line), or the bearer's phone with one digit changed or two adjacent digits swapped. A phone
  never seen with the bearer or the bearer's household (another person's number, or an old one) stops it;
* with no phone and no ID at all (the name is the only evidence), the name must be rare enough in this data
  set that another, unidentified person bearing it is unlikely: the expected number of persons bearing it
  (the same characters: the name; only the same sound: the sound), from the shares of its surname and of
  its given-name characters (syllables) among the identified persons, times the number of persons, must
  stay below :data:`NAME_ONLY_MAX_EXPECTED`. Two-character names (张伟, 王芳) never pass; a rare
  three-character name does in a community, and fewer and fewer do as the data set grows. Measured on the
  dev seeds: any name of three characters as the rule made 31 right and 26 wrong links at street scale
  (seed 777, second model), where every name-only candidate's expectation was >= 0.11 and the right and
  wrong ones were mixed; on the six community dev runs the right ones were 0.004-0.018, the wrong ones
  0.43-0.72.

The pass runs on whole persons, so the data set's size matters: the larger it is, the fewer names have a
sole bearer, and the fewer links it makes. Returns links only; ``person_link.cluster`` applies them.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, Levenshtein

__all__ = ["sole_bearer_links", "expected_bearers", "NAME_ONLY_MAX_EXPECTED"]

#: a link on the name alone (no phone, no ID text): the expected number of persons bearing the name in the data
#: set must be below this (see the module doc)
NAME_ONLY_MAX_EXPECTED = 0.05


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
    name = mentions["name"].to_numpy(dtype=object)
    members: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(roots):
        members[int(r)].append(i)
    ids_of = {r: {valid[i] for i in ms if valid[i]} for r, ms in members.items()}
    phones_at: dict[str, set[str]] = defaultdict(set)
    for h, p in zip(house, phone, strict=True):
        if h and p:
            phones_at[h].add(p)
    by_sound: dict[str, dict[int, int]] = defaultdict(dict)   # sound -> person -> its first mention with it
    for i, s in enumerate(sound):
        if s:
            by_sound[s].setdefault(int(roots[i]), i)
    firsts = [ms[0] for r, ms in members.items() if ids_of[r] and name[ms[0]]]
    freq = expected_bearers([name[i] for i in firsts])
    sound_freq = expected_bearers([sound[i].split(" ") for i in firsts if sound[i]])
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
            expected = ""
            if not how and not any(text[i] for i in ms):
                bname = name[persons[bearer]]
                # the same characters: how many bear the name; only the same sound: how many bear the sound
                e = (freq(bname) if name[first] == bname else sound_freq(s.split(" "))) * len(members)
                if e >= NAME_ONLY_MAX_EXPECTED:
                    continue
                expected = f";expected_bearers={e:.4f}"
            joined.add(r)
            evidence = ",".join(sorted(set(how))) or "none"
            out.append((first, persons[bearer], f"name=sole_bearer;phone={evidence}{expected}"))
    return out


def _split(name: str | list[str]) -> tuple[str, tuple[str, ...]]:
    """(surname, given-name units): a four-unit name has a compound surname (欧阳, 司马) or two surnames."""
    cut = 2 if len(name) >= 4 else 1
    return "".join(name[:cut]), tuple(name[cut:])


def expected_bearers(names: list[str] | list[list[str]]):
    """A function name -> the share of persons expected to bear it: the share of ``names`` (one per identified
    person) with its surname times, per given-name unit, the share of given-name units that are it (a unit
    never seen counts as seen once). Units: characters of a name, or syllables of its sound."""
    surnames: dict[str, int] = defaultdict(int)
    chars: dict[str, int] = defaultdict(int)
    for n in names:
        s, g = _split(n)
        surnames[s] += 1
        for ch in g:
            chars[ch] += 1
    ns, nc = max(len(names), 1), max(sum(chars.values()), 1)

    def share(name: str) -> float:
        s, g = _split(name)
        p = max(surnames.get(s, 0), 1) / ns
        for ch in g:
            p *= max(chars.get(ch, 0), 1) / nc
        return p

    return share


def _birth_sex(id18: str) -> tuple[str, str]:
    return id18[6:14], "M" if int(id18[16]) % 2 else "F"
