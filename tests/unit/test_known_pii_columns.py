"""The known names, phones and house codes read from silver's PII columns in Arrow (gridlake.privacy_scan)."""

from __future__ import annotations

import pyarrow as pa

from gridlake.privacy_scan import known_from_tables

PERSON = pa.struct([("name", pa.string()), ("phone", pa.string()), ("id_text", pa.string())])


def test_every_kind_of_column_gives_its_values_once_and_nothing_empty():
    declarations = pa.table({"phone": ["13800138000", None, "", "13800138000", "0755-8888"],
                             "name": ["张三", "李四；王五", " 赵六 ; ", None, ""]})
    persons = pa.table({"persons": pa.array([
        [{"name": "孙七", "phone": "13900139000", "id_text": "x"}, {"name": None, "phone": "", "id_text": None}],
        [],
        None,
        [{"name": " 周八 ", "phone": None, "id_text": None}, {"name": "孙七", "phone": "13900139000", "id_text": None}],
    ], pa.list_(PERSON))})
    housing = pa.table({"house_code": ["H1", "H1", None, "H2"], "address_raw": ["福田区福华路18号", None, "", "福华路18号"],
                        "address_norm": ["福华路18号", "福华路18号", None, ""]})
    known, addresses = known_from_tables([declarations, persons, housing])
    assert known.phones == {"13800138000", "0755-8888", "13900139000"}
    # names split at either semicolon and stripped; a member's name stripped
    assert known.names == {"张三", "李四", "王五", "赵六", "孙七", "周八"}
    assert known.house_codes == {"H1", "H2"}
    assert addresses == {"福田区福华路18号", "福华路18号"}


def test_chunked_columns_and_no_tables():
    chunked = pa.Table.from_batches([pa.record_batch({"landlord_phone": ["1", "2"]}),
                                     pa.record_batch({"landlord_phone": ["2", None]})])
    known, addresses = known_from_tables([chunked])
    assert known.phones == {"1", "2"} and not known.names and not addresses
    known, addresses = known_from_tables([])
    assert not (known.phones or known.names or known.house_codes or addresses)
