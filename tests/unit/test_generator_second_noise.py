"""The second address noise model: switch, reproducibility, every kind, unresolvable truth (no Spark)."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pypinyin import Style, lazy_pinyin

from gridlake.config import ConfigError
from tools.generate.config import SECOND_KINDS, SECOND_UNRESOLVABLE, load_gen_config
from tools.generate.geography import build_geography
from tools.generate.noise_second import (
    cn_positional,
    digit_typos,
    parts_of,
    render_second,
    site_index,
    typo_building,
    typo_room,
    write_number,
)
from tools.generate.noise_words import S2T, same_sound, to_traditional
from tools.generate.run import generate


@pytest.fixture(scope="module")
def geo():
    cfg = load_gen_config("tiny")
    return build_geography(cfg.scale, cfg.world, np.random.default_rng(5))


@pytest.fixture(scope="module")
def second(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gen-second")
    generate(load_gen_config(scale="tiny", days=1, seed=5, noise_file="second"), root)
    return root


def test_numbers_in_every_style() -> None:
    assert write_number(503, "cn_digits") == "五零三"
    assert write_number(503, "cn_digits", "〇") == "五〇三"
    assert write_number(105, "cn_positional") == "一百零五"
    assert cn_positional(23) == "二十三" and cn_positional(10) == "十" and cn_positional(1203) == "一千二百零三"
    assert write_number(501, "fullwidth") == "５０１"
    assert write_number("A", "fullwidth") == "Ａ" and write_number("A", "cn_digits") == "A"


def test_homophones_by_sound_and_traditional() -> None:
    alts = same_sound("沙")
    assert len(alts) >= 3 and "沙" not in alts
    assert all(lazy_pinyin(c, style=Style.NORMAL) == ["sha"] for c in alts)
    assert to_traditional("福华花园3栋2单元501号") == "福華花園3棟2單元501號"
    assert all(s != t for s, t in S2T.items())


def test_config_switch_and_validation(tmp_path) -> None:
    assert load_gen_config("tiny").noise_model == "default"
    cfg = load_gen_config("tiny", noise_file="second")
    assert cfg.noise_model == "second" and cfg.address_noise["kinds"].keys() <= set(SECOND_KINDS)
    assert load_gen_config("tiny", noise_model="second").address_noise == cfg.noise["address_second"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("noise: {model: third}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="noise.model"):
        load_gen_config("tiny", noise_file=bad)
    bad.write_text("noise: {model: second, address_second: {kinds: {no_such_kind: 1}}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no_such_kind"):
        load_gen_config("tiny", noise_file=bad)


def test_every_kind_applies(geo) -> None:
    r = random.Random(11)
    seen: set[str] = set()
    for kind in SECOND_KINDS:
        for _ in range(30):
            h = r.randrange(geo.n)
            text, kinds = render_second(geo, h, r, True, 0, {kind: 1.0}, 0.0)
            assert text and "None" not in text
            if kind in kinds:
                seen.add(kind)
                break
    assert seen == set(SECOND_KINDS)


def test_forms_seen(geo) -> None:
    r = random.Random(3)
    weights = {k: 1.0 for k in SECOND_KINDS}
    texts = [render_second(geo, h, r, True, 0, weights, 0.6)[0] for h in range(geo.n) for _ in range(2)]
    blob = "\n".join(texts)
    for pattern in (r"[０-９]", r"[零〇一二三四五六七八九]{3}", r"百零", r"\d+号(\s|$|[（(【\[<，,])", r"\d+-\d+-\d+",
                    r"[幢座#梯F]", r"地铁", r"(村委会|居委会)", r"(出租|单间|一房一厅|两房一厅|合租|整租)",
                    r"[華園棟號區]", r"(室|房|户)[，, ]\S*(栋|幢|座|号楼|#|号|號)"):
        assert re.search(pattern, blob), pattern
    # mixed numerals within one address
    assert any(re.search(r"\d", t) and re.search(r"[一二三四五六七八九十]", re.sub(r"[^\d一-龥]", "", t.split("社区")[-1]))
               for t in texts)


def test_typos_hit_no_house(geo) -> None:
    r = random.Random(2)
    idx = site_index(geo)
    for h in range(0, geo.n, 3):
        key = geo.site_key(h)
        p = parts_of(geo, h)
        if typo_room(p, key, idx, r):
            assert p.room not in idx.rooms[(key, p.bld)]
            assert str(p.room) != str(int(geo.room[h]))
        p = parts_of(geo, h)
        if typo_building(p, key, idx, r):
            assert p.bld not in idx.blds[key]
    assert "501" not in digit_typos("501", r) and "5011" in digit_typos("501", r) and "510" in digit_typos("501", r)


def test_reproducible_and_unresolvable_truth(second: Path, tmp_path) -> None:
    again = tmp_path / "again"
    generate(load_gen_config(scale="tiny", days=1, seed=5, noise_file="second"), again)

    def digest(root: Path) -> str:
        return hashlib.sha256(b"".join(p.read_bytes() for p in sorted((root / "landing").rglob("*.csv")))).hexdigest()

    assert digest(second) == digest(again)
    manifest = json.loads((second / "truth" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["noise_model"] == "second" and manifest["seed"] == 5 and manifest["scale"] == "tiny"
    rec = pd.read_parquet(second / "truth" / "records.parquet")
    kinds = rec["noise"].fillna("").str.split(";")
    unres = kinds.map(lambda ks: bool(set(SECOND_UNRESOLVABLE) & set(ks)))
    assert unres.any() and (rec.loc[unres, "house_code"] == "").all()
    assert not kinds.map(lambda ks: bool({"nonexistent_building", "nonexistent_room", "cn_numerals"} & set(ks))).any()
    applied = set().union(*kinds.map(set))
    assert len(applied & set(SECOND_KINDS)) >= len(SECOND_KINDS) - 2


def test_default_model_unchanged(tmp_path) -> None:
    root = tmp_path / "d"
    generate(load_gen_config(scale="tiny", days=1, seed=5), root)
    rec = pd.read_parquet(root / "truth" / "records.parquet")
    kinds = set().union(*rec["noise"].fillna("").str.split(";").map(set))
    assert not kinds & (set(SECOND_KINDS) | {"typo_building", "typo_room", "missing_room"})
    assert json.loads((root / "truth" / "manifest.json").read_text(encoding="utf-8"))["noise_model"] == "default"
