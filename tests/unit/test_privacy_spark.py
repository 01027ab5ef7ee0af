"""The Spark expressions of gridlake.privacy equal Python's hmac and the masking rules."""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import functions as F

from gridlake.privacy import discrepancy_id, discrepancy_id_py, mask_id, mask_name, mask_phone, pseudonym

VALUES = ["440304199001011237", "44030419850202123X", "张三明", "", None, "a" * 300]


def test_spark_hmac_equals_python_hmac_for_short_and_long_keys(spark):
    df = spark.createDataFrame([(v,) for v in VALUES], "v string")
    for key in (b"test-only-key-not-secret-0123456789abcdef", b"x" * 100):  # > block size: the key is hashed first
        got = [r[0] for r in df.select(pseudonym("v", key)).collect()]
        want = [hmac.new(key, v.strip().upper().encode(), hashlib.sha256).hexdigest() if v else None for v in VALUES]
        assert got == want
        ids = df.select(discrepancy_id(F.lit("hidden_rental"), F.col("v"), F.lit(None).cast("string"), key)).collect()
        assert ids[0][0] == discrepancy_id_py(key, "hidden_rental", VALUES[0])


def test_spark_masks(spark):
    df = spark.createDataFrame([("440304199001011234", "张三明", "13812345678"), ("44030419850202123X", "李四", None),
                                (None, "欧阳小明", "1381")], "i string, n string, p string")
    rows = df.select(mask_id("i"), mask_name("n"), mask_phone("p")).collect()
    assert [tuple(r) for r in rows] == [("4403**********1234", "张*明", "138****5678"), ("4403**********123X", "李*", None),
                                        (None, "欧**明", "****")]
