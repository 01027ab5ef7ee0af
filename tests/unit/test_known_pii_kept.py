"""gridlake.privacy_scan.known_pii_from_silver reads silver's names and phones once per set of table versions
and forgets them when told (no Spark: the tables are written with deltalake)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from gridlake.privacy_scan import forget_known_pii, known_pii_from_silver


@pytest.fixture
def settings(tmp_path):
    from gridlake.config import load_settings

    forget_known_pii()
    yield load_settings("local", data_root=tmp_path / "data")
    forget_known_pii()


def _declare(settings, name: str, phone: str, mode: str = "append") -> None:
    rows = pa.table({"declaration_id": [f"D-{name}"], "name": [name], "phone": [phone]})
    write_deltalake(settings.table_path("silver", "declarations"), rows, mode=mode)


def test_the_same_versions_give_the_set_read_before_and_a_new_version_a_new_read(settings):
    _declare(settings, "陈建国", "13800138000")
    first = known_pii_from_silver(settings)
    assert "陈建国" in first.names and "13800138000" in first.phones
    assert known_pii_from_silver(settings) is first  # nothing moved: not read again

    _declare(settings, "林秀英", "13900139000")    # version 1
    second = known_pii_from_silver(settings)
    assert second is not first and {"陈建国", "林秀英"} <= second.names


def test_a_table_created_again_at_the_same_version_is_read_again(settings):
    _declare(settings, "陈建国", "13800138000")
    first = known_pii_from_silver(settings)
    shutil.rmtree(Path(settings.table_path("silver", "declarations")))
    _declare(settings, "黄志强", "13700137000")    # version 0 again, another table
    again = known_pii_from_silver(settings)
    assert "黄志强" in again.names and "陈建国" not in again.names and again is not first


def test_forgotten_sets_are_read_again(settings):
    _declare(settings, "陈建国", "13800138000")
    first = known_pii_from_silver(settings)
    forget_known_pii()
    again = known_pii_from_silver(settings)
    assert again is not first and again.names == first.names
