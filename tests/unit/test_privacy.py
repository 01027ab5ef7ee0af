"""Pseudonym key handling and the Python twins of the masks (no Spark)."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat

import pytest

from gridlake.config import load_settings
from gridlake.errors import PrivacyError
from gridlake.privacy import (
    discrepancy_id_py,
    hmac_hex,
    load_key,
    mask_id_py,
    mask_name_py,
    mask_phone_py,
    pseudonym_py,
)


def test_hmac_hex_is_hmac_sha256():
    key = b"k" * 20
    assert hmac_hex(key, "440304199001011237") == hmac.new(key, b"440304199001011237", hashlib.sha256).hexdigest()
    assert pseudonym_py(key, " 44030419850202123x ") == hmac_hex(key, "44030419850202123X")
    assert pseudonym_py(key, None) is None and pseudonym_py(key, "  ") is None


def test_discrepancy_id_format():
    key = b"k" * 20
    a = discrepancy_id_py(key, "hidden_rental", "440304000000000001")
    assert a == hmac_hex(key, "hidden_rental|440304000000000001|")[:16] and len(a) == 16
    assert a != discrepancy_id_py(b"j" * 20, "hidden_rental", "440304000000000001")


def test_masks():
    assert mask_id_py("440304199001011234") == "4403**********1234"
    assert mask_name_py("张三明") == "张*明"
    assert mask_name_py("张三") == "张*"
    assert mask_name_py("欧阳小明") == "欧**明"
    assert mask_phone_py("13812345678") == "138****5678"
    assert mask_id_py(None) is None and mask_phone_py("123") == "***"


def test_key_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDLAKE_PSEUDONYM_KEY", "an-env-key-of-enough-length")
    settings = load_settings("cluster", data_root=tmp_path)
    assert load_key(settings) == b"an-env-key-of-enough-length"


def test_cluster_profile_refuses_without_key(tmp_path, monkeypatch):
    monkeypatch.delenv("GRIDLAKE_PSEUDONYM_KEY", raising=False)
    settings = load_settings("cluster", data_root=tmp_path, env={})
    with pytest.raises(PrivacyError, match="GRIDLAKE_PSEUDONYM_KEY"):
        load_key(settings)
    assert not settings.key_file.exists()


def test_short_key_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDLAKE_PSEUDONYM_KEY", "short")
    with pytest.raises(PrivacyError, match="too short"):
        load_key(load_settings("cluster", data_root=tmp_path))


def test_local_profile_makes_a_0600_key_file_once(tmp_path, monkeypatch):
    monkeypatch.delenv("GRIDLAKE_PSEUDONYM_KEY", raising=False)
    settings = load_settings("local", data_root=tmp_path / "d", env={})
    k1 = load_key(settings)
    assert settings.key_file.exists() and len(k1) >= 32
    assert stat.S_IMODE(os.stat(settings.key_file).st_mode) == 0o600
    os.chmod(settings.key_file, 0o644)
    assert load_key(settings) == k1  # read back, same key
    assert stat.S_IMODE(os.stat(settings.key_file).st_mode) == 0o600
