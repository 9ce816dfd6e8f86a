"""Uploaded CSV tables for the Playground: defensive parsing, normalisation and a shared memory of recent uploads.

A table is two numeric feature columns and one label or target column, with a header row. Parsing reads only the
bytes it is given (never a path), checks the size before parsing, and collects every problem it finds so the
user can fix the file in one go. Tables are remembered by a hash of their content, so a config's `data_id`
finds the same table in every session of the server process.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_CSV_BYTES = 5 * 1024 * 1024  # refuse larger files before parsing anything
MAX_ROWS = 20_000  # data rows, header not counted; bounds training time per epoch
MIN_ROWS = 20  # fewer rows leave too little to split into train and test
N_COLUMNS = 3  # feature 1, feature 2, label or target
MIN_CLASSES = 2
MAX_CLASSES = 20  # also the most distinct whole numbers a numeric label column may hold to count as classes
REMEMBERED_TABLES = 32  # uploads kept in memory, shared by all sessions; ~240 kB each at MAX_ROWS
_MISSING = frozenset({"", "nan", "na", "n/a", "#n/a", "null", "none", "-nan"})  # compared lower-cased
_LISTED = 5  # row numbers quoted per column in a message before "and N more"


class CsvRejected(ValueError):
    """The upload is not a table the Playground can use; the message lists every problem, for the user."""

    def __init__(self, problems: str | Sequence[str]):
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"The CSV has {len(self.problems)} problems:\n" + "\n".join(f"- {p}" for p in self.problems)
        super().__init__(message)


@dataclass(frozen=True)
class UploadedTable:
    """A parsed, normalised upload. Arrays are read-only because sessions share the table."""

    data_id: str  # first 16 hex digits of the SHA-256 of the file's bytes
    x: np.ndarray  # (N, 2) float32, each column centred on its mean and divided by its max-abs: within [-1, 1]
    y: np.ndarray  # (N,) int32 class indices into class_names, or float32 targets min-max scaled to [-1, 1]
    task: str  # "classification" or "regression"
    class_names: tuple[str, ...]  # sorted label values as text; () for regression
    feature_names: tuple[str, str]  # the header's first two names
    target_name: str  # the header's third name
    rows: int  # N


def parse_csv(data: bytes) -> UploadedTable:
    """Parse an uploaded CSV's bytes into a normalised table.

    Classification when the third column holds text, or whole numbers with at most MAX_CLASSES distinct values;
    otherwise regression.

    Raises:
        TypeError: `data` is not bytes (a path or file name is never opened).
        CsvRejected: empty, over MAX_CSV_BYTES, binary or not UTF-8, lines of unequal length, not N_COLUMNS
            columns, no header, fewer than MIN_ROWS or more than MAX_ROWS rows, empty or NaN cells, features
            that are not finite numbers, fewer than MIN_CLASSES or more than MAX_CLASSES classes, or a constant
            regression target. The message names every problem found.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_csv takes the uploaded file's bytes, got {type(data).__name__}.")
    data = bytes(data)
    text = _decode(data)
    header, body = _read_cells(text)
    problems = _header_problems(header)
    problems += _row_count_problems(len(body[0]), text)
    problems += _missing_problems(header, body)
    features = [_feature_values(header[i], body[i], problems) for i in range(2)]
    target = _target(header[2], body[2], problems)
    if problems:
        raise CsvRejected(problems)
    task, y, class_names = target
    return UploadedTable(
        data_id=hashlib.sha256(data).hexdigest()[:16],
        x=_read_only(np.stack([_centre_and_scale(f) for f in features], axis=1).astype(np.float32)),
        y=_read_only(y),
        task=task,
        class_names=class_names,
        feature_names=(header[0], header[1]),
        target_name=header[2],
        rows=len(body[0]),
    )


def _decode(data: bytes) -> str:
    """UTF-8 text of the upload, refusing what is empty, too large or not text."""
    if len(data) > MAX_CSV_BYTES:
        raise CsvRejected(f"The file is {len(data) / 2**20:.2f} MB ({len(data):,} bytes); the limit is "
                          f"{MAX_CSV_BYTES / 2**20:.0f} MB ({MAX_CSV_BYTES:,} bytes).")
    if not data.strip():
        raise CsvRejected("The file is empty.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CsvRejected("The file is UTF-16 text; save it as CSV in UTF-8 (\"CSV UTF-8\" in spreadsheet apps).")
    if b"\x00" in data:
        raise CsvRejected("The file is binary (it contains NUL bytes), not a CSV text file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CsvRejected(f"The file is not UTF-8 text: byte 0x{data[err.start]:02X} on line {line} cannot be read. "
                          "Save it as CSV in UTF-8 (\"CSV UTF-8\" in spreadsheet apps).") from err


def _read_cells(text: str) -> tuple[tuple[str, ...], list[pd.Series]]:
    """The header's names and one Series of stripped strings per column, at most MAX_ROWS + 1 data rows."""
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=",", header=None, dtype=str, na_filter=False, skip_blank_lines=True,
            index_col=False, engine="c", compression=None, nrows=MAX_ROWS + 2,  # header + one row past the limit
        )
    except pd.errors.EmptyDataError as err:
        raise CsvRejected("The file is empty.") from err
    except pd.errors.ParserError as err:
        raise CsvRejected(_ragged_line_message(str(err))) from err
    if frame.shape[1] != N_COLUMNS:
        names = ", ".join(repr(str(name).strip()) for name in frame.iloc[0])
        raise CsvRejected(f"The file has {_count(frame.shape[1], 'column')} ({names}); it needs "
                          f"exactly {N_COLUMNS}, separated by commas: two numeric features, then the label or "
                          "target.")
    header = tuple(str(name).strip() for name in frame.iloc[0])
    body = [frame[column].iloc[1:].str.strip().reset_index(drop=True) for column in frame.columns]
    return header, body


def _ragged_line_message(error: str) -> str:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", error)
    if found is None:
        return f"The file cannot be read as comma-separated values ({error.strip()})."
    expected, line, seen = (int(n) for n in found.groups())
    return (f"Line {line} has {seen} values but the header has {expected}; every line needs exactly {expected}, "
            "separated by commas.")


def _header_problems(header: tuple[str, ...]) -> list[str]:
    numeric = pd.to_numeric(pd.Series(header[:2]), errors="coerce")
    if numeric.notna().all():
        return [f"The first line holds numbers ({', '.join(header)}), not column names; add a header row such as "
                "x1,x2,label."]
    problems = [f"Column {i + 1} has no name in the header row." for i, name in enumerate(header) if not name]
    duplicated = sorted({name for name in header if name and header.count(name) > 1})
    problems += [f"More than one column is named {name!r}; give each column its own name." for name in duplicated]
    return problems


def _row_count_problems(rows: int, text: str) -> list[str]:
    if rows < MIN_ROWS:
        return [f"The file has {_count(rows, 'data row')}; it needs at least {MIN_ROWS}."]
    if rows > MAX_ROWS:  # parsing stopped one row past the limit; count the rest by their lines
        total = sum(1 for line in io.StringIO(text) if line.strip()) - 1
        return [f"The file has {total:,} data rows; the limit is {MAX_ROWS:,}."]
    return []


def _missing_problems(header: tuple[str, ...], body: list[pd.Series]) -> list[str]:
    where, count = [], 0
    for name, cells in zip(header, body, strict=True):
        rows = _row_numbers(cells.str.lower().isin(_MISSING))
        if rows.size:
            count += rows.size
            where.append(f"column {name!r} in {_rows_text(rows)}")
    if not count:
        return []
    return [f"The file has {_count(count, 'empty or NaN cell')}: {'; '.join(where)}. Fill them in or delete those "
            "rows."]


def _feature_values(name: str, cells: pd.Series, problems: list[str]) -> np.ndarray:
    """The column as float64; cells that are not finite numbers are added to `problems` (missing ones already are)."""
    missing = cells.str.lower().isin(_MISSING)
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    text_rows = _row_numbers(np.isnan(values) & ~missing)
    if text_rows.size:
        first = cells.iloc[text_rows[0] - 1]
        problems.append(f"Column {name!r} is not numeric: it holds {_count(text_rows.size, 'value')} that cannot be "
                        f"read as a number, in {_rows_text(text_rows)} (the first reads {first!r}). Both feature "
                        "columns must hold numbers.")
    infinite = _row_numbers(np.isinf(values))
    if infinite.size:
        problems.append(f"Column {name!r} holds {_count(infinite.size, 'infinite value')} (too large for a "
                        f"number), in {_rows_text(infinite)}.")
    return values


def _target(name: str, cells: pd.Series, problems: list[str]) -> tuple[str, np.ndarray, tuple[str, ...]]:
    """(task, y, class_names) from the third column; its problems are added to `problems`."""
    present = cells[~cells.str.lower().isin(_MISSING)]
    values = pd.to_numeric(present, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any():  # any text: every distinct value is a class
        return _classes(name, present.to_numpy(dtype=str), problems)
    if values.size and np.isinf(values).any():
        problems.append(f"The target column {name!r} holds infinite values (too large for a number).")
        return "regression", np.zeros(0, np.float32), ()
    whole = np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53)
    if whole and np.unique(values).size <= MAX_CLASSES:
        return _classes(name, values.astype(np.int64), problems)
    if values.size and values.min() == values.max():
        problems.append(f"The target column {name!r} holds the same value in every row, so there is nothing to "
                        "predict.")
    return "regression", _min_max_scaled(values).astype(np.float32), ()


def _classes(name: str, labels: np.ndarray, problems: list[str]) -> tuple[str, np.ndarray, tuple[str, ...]]:
    """Classes sorted by value (numerically for whole numbers, alphabetically for text) and each row's index."""
    names, y = np.unique(labels, return_inverse=True)
    class_names = tuple(str(n) for n in names)
    if len(class_names) < MIN_CLASSES and labels.size:
        problems.append(f"The label column {name!r} holds only one class ({class_names[0]!r}); it needs at least "
                        f"{MIN_CLASSES}.")
    if len(class_names) > MAX_CLASSES:
        problems.append(f"The label column {name!r} holds {len(class_names)} classes; the limit is {MAX_CLASSES}. "
                        "(A column of numbers with more distinct values than that is treated as a regression "
                        "target.)")
    return "classification", y.astype(np.int32), class_names


def _centre_and_scale(values: np.ndarray) -> np.ndarray:
    """Centre on the mean, then divide by the largest |value|: within [-1, 1]; a constant column becomes zeros."""
    centred = _prescaled(values)
    centred = centred - centred.mean()
    peak = np.abs(centred).max()
    return centred / peak if peak > 0 else centred


def _min_max_scaled(values: np.ndarray) -> np.ndarray:
    """Map the smallest value to -1 and the largest to 1."""
    scaled = _prescaled(values)
    low, high = scaled.min(), scaled.max()
    return 2 * (scaled - low) / (high - low) - 1 if high > low else np.zeros_like(scaled)


def _prescaled(values: np.ndarray) -> np.ndarray:
    """Divided by the largest |value| first, so sums and differences of values near 1e308 cannot overflow."""
    peak = np.abs(values).max()
    return values / peak if peak > 0 else values


def _row_numbers(mask: np.ndarray | pd.Series) -> np.ndarray:
    """1-based data row numbers (the header not counted) where `mask` is true."""
    return np.flatnonzero(np.asarray(mask)) + 1


def _rows_text(rows: np.ndarray) -> str:
    listed = ", ".join(str(r) for r in rows[:_LISTED])
    more = f" and {rows.size - _LISTED} more" if rows.size > _LISTED else ""
    return f"data row{'s' * (rows.size != 1)} {listed}{more}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class _RecentTables:
    """A thread-safe LRU of tables by data_id: the server's sessions upload and look up concurrently."""

    def __init__(self, capacity: int):
        self._capacity = capacity
        self._tables: OrderedDict[str, UploadedTable] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, table: UploadedTable) -> None:
        with self._lock:
            self._tables[table.data_id] = table
            self._tables.move_to_end(table.data_id)
            while len(self._tables) > self._capacity:
                self._tables.popitem(last=False)

    def get(self, data_id: str) -> UploadedTable | None:
        with self._lock:
            table = self._tables.get(data_id)
            if table is not None:
                self._tables.move_to_end(data_id)
            return table


_RECENT = _RecentTables(REMEMBERED_TABLES)


def remember(table: UploadedTable) -> None:
    """Keep the table for `lookup`; the least recently used of more than REMEMBERED_TABLES is forgotten."""
    _RECENT.put(table)


def lookup(data_id: str) -> UploadedTable | None:
    """The remembered table with this data_id, or None when it was never uploaded or has been forgotten."""
    return _RECENT.get(data_id)
