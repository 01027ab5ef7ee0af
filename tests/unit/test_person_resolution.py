"""gold.person_resolution rows from person mentions (no Spark): methods, identified persons, cluster sizes,
explanations without personal values; and the generator's deliveries carry the mentions its truth records."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from gridlake.ids import check_digit
from gridlake.privacy import pseudonym_py
from jobs.matching.persons import MENTION_COLUMNS, resolution_frame
from schemas.gold import PERSON_RESOLUTION

KEY = b"test-key-for-person-resolution-0123456789"


def _id(first17: str) -> str:
    return first17 + check_digit(first17)


ID_A = _id("44030519900101123")
TYPO_A = ID_A[:15] + str((int(ID_A[15]) + 3) % 10) + ID_A[16:]


def _row(source: str, rid: str, no: int, name: str, phone: str | None, id_number: str | None, house: str | None,
         status: str) -> dict:
    return {"source": source, "record_id": rid, "mention_no": no, "role": "declarant" if source == "declarations" else "party",
            "record_key": f"{source}:{rid}#{no}", "name": name, "phone": phone, "id_number": id_number,
            "house_code": house, "id_status": status}


def _background(n: int = 500) -> list[dict]:
    sur, giv = "赵钱孙周吴郑冯褚卫蒋沈韩", "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉"
    out = []
    for i in range(n):
        name = sur[i % len(sur)] + giv[(i // len(sur)) % len(giv)] + giv[(i // (len(sur) * len(giv))) % len(giv)]
        out.append(_row("declarations", f"BG{i}", 0, name, f"1590000{i:04d}",
                        _id(f"4403061980{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"), f"B{i}", "valid"))
    return out


def test_resolution_rows_methods_and_statistics():
    rows = [
        _row("declarations", "D1", 0, "刘晓东", "13900001111", TYPO_A, "H1", "checksum_failed"),
        _row("police_incidents", "P1", 0, "刘晓东", "13900001111", ID_A, "H1", "valid"),
        _row("police_incidents", "P1", 1, "陈某某", None, None, "H1", "missing"),
        _row("declarations", "D2", 0, "王芳", "13700002222", _id("44030419920303125")[:-1] + "Z", "H2", "checksum_failed"),
    ]
    frame, stats = resolution_frame(pd.DataFrame(rows + _background(), columns=MENTION_COLUMNS), KEY)
    assert list(frame.columns) == [f.name for f in PERSON_RESOLUTION.fields]
    r = frame.set_index(frame["source"] + ":" + frame["record_id"] + "#" + frame["mention_no"].astype(str))
    d1, p1 = r.loc["declarations:D1#0"], r.loc["police_incidents:P1#0"]
    assert d1.person_key == p1.person_key == pseudonym_py(KEY, ID_A)        # the person's key: its valid ID's
    assert {d1.method, p1.method} == {"corroborated", "anchor"}
    linked = d1 if d1.method == "corroborated" else p1
    assert linked.score >= 12.0 and linked.explanation.startswith("linked_to=")
    assert bool(d1.identified) and int(d1.cluster_size) == 2
    alone = r.loc["police_incidents:P1#1"]
    assert alone.method == "singleton" and not bool(alone.identified) and pd.isna(alone.score)
    assert r.loc["declarations:D2#0"].method == "singleton"
    assert stats["checksum_failed_declarations"] == 2 and stats["checksum_failed_linked"] == 1
    text = " ".join(frame["explanation"].dropna())
    for value in ("刘晓东", "13900001111", ID_A, TYPO_A, "王芳"):
        assert value not in text
    assert frame["person_key"].str.fullmatch("[0-9a-f]{64}").all()


def test_no_mentions_gives_an_empty_frame():
    frame, stats = resolution_frame(pd.DataFrame(columns=MENTION_COLUMNS), KEY)
    assert frame.empty and stats["mentions"] == 0


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from tools.generate.config import load_gen_config
    from tools.generate.run import generate

    out = tmp_path_factory.mktemp("deliveries")
    generate(load_gen_config("community", days=2, seed=64021), out)
    return out


def test_police_files_carry_the_mentions_the_truth_records(generated):
    from gridlake.sources import get_source

    truth = pd.read_parquet(generated / "truth" / "person_mentions.parquet")
    truth = truth[(truth["source"] == "police_incidents") & ~truth["noise"].str.contains("namesake")]
    src = get_source("police_incidents")
    header = [src.columns[c] for c in src.canonical_columns]
    delivered = {}
    for path in sorted((generated / "landing" / "police_incidents").rglob("*.csv")):
        with open(path, encoding="gb18030", newline="") as f:
            reader = csv.reader(f)
            assert next(reader) == header
            for cells in reader:
                if len(cells) != len(header):
                    continue                      # a malformed row (planted)
                row = dict(zip(src.canonical_columns, cells, strict=True))
                for i, (n, p, x) in enumerate(zip(row["person_names"].split("、"), row["person_phones"].split("、"),
                                                  row["person_ids"].split("、"), strict=True)):
                    if n:
                        delivered[f"police_incidents:{row['incident_id']}#{i}"] = (n, p, x)
    assert len(delivered) >= 20
    got = truth[truth["record_key"].isin(delivered)]
    assert len(got) == len(delivered)
    for k, n, p, x in zip(got["record_key"], got["name"], got["phone"], got["id_number"], strict=True):
        assert delivered[k] == (n, p, x)
    kinds = set(";".join(truth["noise"]).split(";"))
    assert {"id_missing", "phone_format"} <= kinds



def test_the_frame_for_spark_has_the_schema_types_and_none_for_missing():
    from jobs.matching.person_publish import to_spark_frame

    rows = [_row("declarations", "D1", 0, "刘晓东", "13900001111", TYPO_A, "H1", "checksum_failed"),
            _row("police_incidents", "P1", 0, "刘晓东", "13900001111", ID_A, "H1", "valid"),
            _row("police_incidents", "P1", 1, "陈某某", None, None, "H1", "missing")]
    rows[2]["role"] = None
    frame, _ = resolution_frame(pd.DataFrame(rows + _background(), columns=MENTION_COLUMNS), KEY)
    frame.loc[frame["record_id"] == "P1", "role"] = float("nan")   # as a merge may leave a missing text
    out = to_spark_frame(frame)
    assert list(out.columns) == [f.name for f in PERSON_RESOLUTION.fields] and len(out) == len(frame)
    assert str(out["mention_no"].dtype) == "int32" and str(out["cluster_size"].dtype) == "int32"
    assert out["identified"].dtype == bool and out["score"].dtype == "float64"
    assert out["score"].isna().any() and out["role"].isna().sum() == 2      # a singleton's score: NaN (null)
    for c in ("role", "explanation", "person_key", "method"):
        assert all(v is None or isinstance(v, str) for v in out[c]), c   # no NaN standing for a missing text
    assert out["identified"].tolist() == frame["identified"].astype(bool).tolist()
    assert out["person_key"].tolist() == frame["person_key"].tolist()


def test_resolution_does_not_depend_on_the_order_the_mentions_arrive_in():
    """Spark hands the mentions over in whatever order its partitions give; a district's 1.3 M mentions in
    another order joined 5 mentions to other persons and changed 238,613 scores. The same mentions in any
    order are the same persons, methods, scores and explanations."""
    rows = [
        _row("declarations", "D1", 0, "刘晓东", "13900001111", TYPO_A, "H1", "checksum_failed"),
        _row("police_incidents", "P1", 0, "刘晓东", "13900001111", ID_A, "H1", "valid"),
        _row("police_incidents", "P2", 0, "刘晓东", "13900001111", None, "H1", "missing"),
        _row("mediation_cases", "M1", 0, "刘晓东", "13900001111", None, "H1", "missing"),
        _row("police_incidents", "P1", 1, "陈某某", None, None, "H1", "missing"),
        _row("declarations", "D2", 0, "王芳", "13700002222", None, "H2", "checksum_failed"),
        _row("family_planning", "F1", 0, "王芳", "13700002222", None, "H2", "missing"),
        _row("family_planning", "F2", 0, "王芳", "13700002222", None, "H2", "missing"),
    ]
    df = pd.DataFrame(rows + _background(), columns=MENTION_COLUMNS)
    first, stats = resolution_frame(df, KEY)
    for seed in (1, 2, 3):
        again, again_stats = resolution_frame(df.sample(frac=1.0, random_state=seed).reset_index(drop=True), KEY)
        key = ["source", "record_id", "mention_no"]
        pd.testing.assert_frame_equal(first.sort_values(key).reset_index(drop=True),
                                      again.sort_values(key).reset_index(drop=True))
        assert again_stats == stats


def test_the_quality_suite_accepts_every_method_a_mention_can_get():
    """A sole-bearer link (matching/person_bearer.py) is a method like the others: a suite that left it out
    would stop the first night whose data holds one."""
    from gridlake.quality.suites import load_suite
    from jobs.matching.persons import METHODS

    suite = load_suite("gold", "person_resolution")
    allowed = next(e.kwargs["value_set"] for e in suite.expectations
                   if e.type == "expect_column_values_to_be_in_set" and e.kwargs.get("column") == "method")
    assert set(allowed) == {*METHODS.values(), "anchor", "singleton"}
