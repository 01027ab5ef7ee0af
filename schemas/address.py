"""The parsed address: one struct shared by silver tables and the matching library."""

from __future__ import annotations

from typing import Any

ADDRESS_COMPONENTS = (
    "street",      # 街道, e.g. 沙头街道
    "community",   # 社区, e.g. 上沙社区
    "road",        # 道路, e.g. 福华路
    "door_no",     # 门牌号 on the road, e.g. 18
    "complex",     # 小区 / 花园 / 大厦, e.g. 福华花园
    "village",     # 城中村, e.g. 上沙村
    "lane",        # 坊 / 巷, e.g. 东村二坊
    "lane_no",     # number within the lane, e.g. 12
    "building",    # 栋/座/幢/号楼 -> number or letter, e.g. 3
    "unit",        # 单元
    "floor",       # 层 / 楼 (never 号楼)
    "room",        # 室 / 房号, e.g. 501
)


def __getattr__(name: str) -> Any:
    """``ADDRESS_STRUCT`` (the components as a Spark struct of strings), built on first use so that the
    pandas matching engine, which needs only :data:`ADDRESS_COMPONENTS`, never imports pyspark."""
    if name == "ADDRESS_STRUCT":
        from pyspark.sql.types import StringType, StructField, StructType

        struct = StructType([StructField(c, StringType(), True) for c in ADDRESS_COMPONENTS])
        globals()["ADDRESS_STRUCT"] = struct
        return struct
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
