import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler

from models import csv_data
from models.csv_data import MAX_CSV_BYTES, MAX_ROWS, CsvRejected, UploadedTable, lookup, parse_csv, remember

DATA = Path(__file__).parent / "data"


def _csv(rows, header="x1,x2,label") -> bytes:
    return (header + "\n" + "\n".join(",".join(str(v) for v in row) for row in rows) + "\n").encode()


def _points(n, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 2))


@pytest.fixture
def fresh_memory(monkeypatch):
    monkeypatch.setattr(csv_data, "_RECENT", csv_data._RecentTables(csv_data.REMEMBERED_TABLES))


# --- the sample files -------------------------------------------------------------------------------------------

def test_good_classification_file():
    table = parse_csv((DATA / "good_classification.csv").read_bytes())
    assert table.task == "classification"
    assert table.class_names == ("setosa", "virginica")
    assert table.feature_names == ("sepal_length", "petal_length") and table.target_name == "species"
    assert table.rows == 200 and table.x.shape == (200, 2) and table.y.shape == (200,)
    assert table.x.dtype == np.float32 and table.y.dtype == np.int32
    assert np.bincount(table.y).tolist() == [100, 100]


def test_good_regression_file():
    table = parse_csv((DATA / "good_regression.csv").read_bytes())
    assert table.task == "regression" and table.class_names == ()
    assert table.feature_names == ("area_m2", "age_years") and table.target_name == "price_k"
    assert table.y.dtype == np.float32 and table.y.min() == -1 and table.y.max() == 1


@pytest.mark.parametrize("name, message", [
    ("bad_column_count.csv", "The file has 4 columns ('sepal_length', 'petal_length', 'sepal_width', 'species'); "
                             "it needs exactly 3"),
    ("bad_ragged_line.csv", "Line 6 has 4 values but the header has 3"),
    ("bad_non_numeric.csv", "Column 'petal_length' is not numeric: it holds 2 values that cannot be read as a "
                            "number, in data rows 4, 9 (the first reads 'tall')"),
    ("bad_missing.csv", "The file has 3 empty or NaN cells: column 'sepal_length' in data row 2; column "
                        "'petal_length' in data row 7; column 'species' in data row 10."),
    ("bad_one_class.csv", "The label column 'species' holds only one class ('setosa'); it needs at least 2."),
    ("bad_21_classes.csv", "The label column 'colour' holds 21 classes; the limit is 20."),
    ("bad_no_header.csv", "The first line holds numbers (5.828, 3.677, 0), not column names; add a header row"),
    ("bad_not_utf8.csv", "The file is not UTF-8 text: byte 0xE9 on line 3 cannot be read."),
    ("bad_too_few_rows.csv", "The file has 10 data rows; it needs at least 20."),
])
def test_bad_file_names_its_problem(name, message):
    with pytest.raises(CsvRejected) as caught:
        parse_csv((DATA / name).read_bytes())
    assert message in str(caught.value)


# --- limits generated here, too large to commit -----------------------------------------------------------------

def test_too_many_rows_gives_the_count():
    rows = [(f"{a:.3f}", f"{b:.3f}", i % 2) for i, (a, b) in enumerate(_points(MAX_ROWS + 1))]
    with pytest.raises(CsvRejected, match="The file has 20,001 data rows; the limit is 20,000.$"):
        parse_csv(_csv(rows))


def test_exactly_max_rows_is_accepted():
    rows = [(f"{a:.3f}", f"{b:.3f}", i % 2) for i, (a, b) in enumerate(_points(MAX_ROWS))]
    assert parse_csv(_csv(rows)).rows == MAX_ROWS


def test_file_over_5_mb_refused_before_parsing(monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("read_csv must not run on an oversized file")

    monkeypatch.setattr(csv_data.pd, "read_csv", no_parsing)
    data = b"x1,x2,label\n" + b"0.5,0.25,1\n" * (MAX_CSV_BYTES // 11 + 1)
    assert len(data) > MAX_CSV_BYTES
    with pytest.raises(CsvRejected, match=rf"\({len(data):,} bytes\); the limit is 5 MB \(5,242,880 bytes\)"):
        parse_csv(data)


def test_binary_content_refused():
    with pytest.raises(CsvRejected, match="binary .*NUL bytes"):
        parse_csv(b"PK\x03\x04\x00\x00 a zip file, say")


def test_utf16_refused_with_a_hint():
    with pytest.raises(CsvRejected, match="UTF-16 text; save it as CSV in UTF-8"):
        parse_csv("x1,x2,label\n1,2,a\n".encode("utf-16"))


@pytest.mark.parametrize("data", [b"", b"  \n\n", b"\xef\xbb\xbf"])
def test_empty_file(data):
    with pytest.raises(CsvRejected, match="^The file is empty.$"):
        parse_csv(data)


def test_a_path_is_never_opened(tmp_path):
    path = tmp_path / "table.csv"
    path.write_bytes((DATA / "good_classification.csv").read_bytes())
    with pytest.raises(TypeError, match="takes the uploaded file's bytes, got str"):
        parse_csv(str(path))


def test_every_problem_is_listed_at_once():
    rows = [(f"{a:.3f}", f"{b:.3f}", "a") for a, b in _points(25)]
    rows[0] = ("", "1", "a")
    rows[2] = ("1", "wide", "a")
    rows[4] = ("inf", "1", "a")
    with pytest.raises(CsvRejected) as caught:
        parse_csv(_csv(rows))
    assert caught.value.problems == (
        "The file has 1 empty or NaN cell: column 'x1' in data row 1. Fill them in or delete those rows.",
        "Column 'x1' holds 1 infinite value (too large for a number), in data row 5.",
        "Column 'x2' is not numeric: it holds 1 value that cannot be read as a number, in data row 3 (the first "
        "reads 'wide'). Both feature columns must hold numbers.",
        "The label column 'label' holds only one class ('a'); it needs at least 2.",
    )
    assert str(caught.value).startswith("The CSV has 4 problems:\n- The file has 1 empty")


def test_nan_spellings_count_as_missing_and_long_lists_are_cut():
    rows = [(f"{a:.3f}", f"{b:.3f}", i % 2) for i, (a, b) in enumerate(_points(30))]
    for i, token in enumerate(["NaN", "nan", "NA", "null", "n/a", "", " "]):
        rows[i] = (rows[i][0], token, rows[i][2])
    with pytest.raises(CsvRejected, match=r"7 empty or NaN cells: column 'x2' in data rows 1, 2, 3, 4, 5 and 2 more\."):
        parse_csv(_csv(rows))


def test_empty_and_duplicate_header_names():
    rows = [(f"{a:.3f}", f"{b:.3f}", i % 2) for i, (a, b) in enumerate(_points(30))]
    with pytest.raises(CsvRejected, match="Column 3 has no name in the header row."):
        parse_csv(_csv(rows, header="x1,x2,"))
    with pytest.raises(CsvRejected, match="More than one column is named 'x'"):
        parse_csv(_csv(rows, header="x,x,label"))


def test_constant_regression_target_refused():
    rows = [(f"{a:.3f}", f"{b:.3f}", 0.5) for a, b in _points(30)]
    with pytest.raises(CsvRejected, match="'label' holds the same value in every row"):
        parse_csv(_csv(rows))


# --- oracles ----------------------------------------------------------------------------------------------------

def test_feature_normalisation_matches_sklearn():
    raw = _points(300, seed=3) * [1000.0, 0.01] + [5e4, -3.0]
    rows = [(f"{a:.17g}", f"{b:.17g}", i % 3) for i, (a, b) in enumerate(raw)]
    table = parse_csv(_csv(rows))
    expected = MaxAbsScaler().fit_transform(raw - raw.mean(axis=0))
    np.testing.assert_allclose(table.x, expected, rtol=0, atol=1e-6)
    assert np.abs(table.x).max(axis=0).tolist() == [1.0, 1.0]
    np.testing.assert_allclose(table.x.mean(axis=0), 0, atol=1e-6)


def test_huge_values_scale_without_overflow():
    raw = _points(40, seed=4) * 1e307
    rows = [(f"{a:.17g}", f"{b:.17g}", i % 2) for i, (a, b) in enumerate(raw)]
    table = parse_csv(_csv(rows))
    np.testing.assert_allclose(table.x, MaxAbsScaler().fit_transform(raw / 1e307 - (raw / 1e307).mean(0)), atol=1e-6)


def test_constant_feature_becomes_zeros():
    rows = [(7, f"{b:.3f}", i % 2) for i, b in enumerate(_points(30)[:, 1])]
    assert np.all(parse_csv(_csv(rows)).x[:, 0] == 0)


def test_regression_target_matches_min_max_scaler():
    raw = _points(250, seed=5)
    target = 40 * raw[:, 0] - raw[:, 1] ** 2 + 7.25
    table = parse_csv(_csv([(f"{a:.17g}", f"{b:.17g}", f"{t:.17g}") for (a, b), t in zip(raw, target, strict=True)]))
    assert table.task == "regression"
    expected = MinMaxScaler(feature_range=(-1, 1)).fit_transform(target[:, None])[:, 0]
    np.testing.assert_allclose(table.y, expected, atol=1e-6)


@pytest.mark.parametrize("labels, task", [
    (["cat", "dog", "cat", "bird"], "classification"),  # text
    ([3, 1, 2, 1], "classification"),  # whole numbers, few distinct values
    (["1.0", "2", "1", "2.0"], "classification"),  # whole numbers written as decimals
    (["yes", "1", "no", "2.5"], "classification"),  # any text makes every value a class
    ([0.5, 1.5, 0.5, 2.0], "regression"),  # not whole numbers
    (list(range(21)), "regression"),  # whole numbers, more distinct values than MAX_CLASSES
])
def test_task_detection(labels, task):
    column = (labels * 20)[: max(40, len(labels))]
    rows = [(f"{a:.3f}", f"{b:.3f}", label) for (a, b), label in zip(_points(len(column)), column, strict=True)]
    assert parse_csv(_csv(rows)).task == task


@pytest.mark.parametrize("labels, as_numbers", [
    (["b", "a", "c", "a", "B", "10", "9"], False),
    (["10", "9", "2", "10", "2", " 9 "], True),  # sorted by value, so "9" comes before "10"
])
def test_class_indices_match_np_unique(labels, as_numbers):
    column = labels * 5
    rows = [(f"{a:.3f}", f"{b:.3f}", label) for (a, b), label in zip(_points(len(column)), column, strict=True)]
    table = parse_csv(_csv(rows))
    stripped = np.array([label.strip() for label in column])
    names, inverse = np.unique(stripped.astype(int) if as_numbers else stripped, return_inverse=True)
    assert table.class_names == tuple(str(n) for n in names)
    np.testing.assert_array_equal(table.y, inverse)


def test_whitespace_and_byte_order_mark_are_tolerated():
    plain = (DATA / "good_classification.csv").read_bytes()
    padded = b"\xef\xbb\xbf" + plain.replace(b",", b" , ").replace(b"\n", b"\r\n")
    a, b = parse_csv(plain), parse_csv(padded)
    assert b.feature_names == a.feature_names and b.class_names == a.class_names
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)


# --- identity and memory ----------------------------------------------------------------------------------------

def test_data_id_is_a_content_hash():
    data = (DATA / "good_classification.csv").read_bytes()
    table = parse_csv(data)
    assert table.data_id == hashlib.sha256(data).hexdigest()[:16]
    assert parse_csv(bytearray(data)).data_id == table.data_id
    assert parse_csv(data + b"\n").data_id != table.data_id


def test_arrays_are_read_only():
    table = parse_csv((DATA / "good_regression.csv").read_bytes())
    with pytest.raises(ValueError, match="read-only"):
        table.x[0, 0] = 0
    with pytest.raises(ValueError, match="read-only"):
        table.y[0] = 0


def _table(n: int) -> UploadedTable:
    return UploadedTable(f"{n:016x}", np.zeros((1, 2), np.float32), np.zeros(1, np.int32), "classification",
                         ("a", "b"), ("x1", "x2"), "label", 1)


def test_remember_and_lookup(fresh_memory):
    table = parse_csv((DATA / "good_classification.csv").read_bytes())
    assert lookup(table.data_id) is None
    remember(table)
    assert lookup(table.data_id) is table
    assert lookup("0" * 16) is None


def test_least_recently_used_is_forgotten(fresh_memory):
    tables = [_table(n) for n in range(33)]
    for table in tables[:32]:
        remember(table)
    assert lookup(tables[0].data_id) is tables[0]  # now the most recently used
    remember(tables[32])
    assert lookup(tables[1].data_id) is None
    assert all(lookup(t.data_id) is t for t in [tables[0], *tables[2:]])


def test_memory_is_thread_safe(fresh_memory):
    errors = []

    def churn(offset):
        try:
            for n in range(500):
                table = _table(offset * 1000 + n)
                remember(table)
                found = lookup(table.data_id)
                assert found is None or found is table
        except Exception as err:  # collected here, asserted on the main thread
            errors.append(err)

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(csv_data._RECENT._tables) == csv_data.REMEMBERED_TABLES
