"""The local run store: trained runs that survive a page reload, a closed tab and a server restart.

Layout of a store folder (the README says where it is and how to turn it off):

    index.sqlite       one row per run: what the Runs page lists, without opening any model
    runs/<id>/         a finished run: run.json (config, history, names), model.keras, snapshots.npz,
                       data.npz (only for an uploaded table, which cannot be rebuilt from the config)
    tmp/<id>-<owner>/  a run folder being written; renamed into runs/ in one step when complete
    owners/<owner>.lock  held (flock) by each live process that writes here

Why it is built this way:
- A row is written last: first the folder is written under tmp/ and renamed into runs/ (atomic on one
  file system), then the row says "completed". A crash in between leaves a row that says "running"
  whose owner is dead; the next process to open the store finds it and marks it from the folder's own
  run.json if the rename happened, or "interrupted" if not. A run is never listed half-written.
- Whether an owner is alive is read from its lock file: the kernel drops a process's locks when it dies,
  even under SIGKILL, and a recycled process id cannot fool it.
- SQLite in WAL mode lets readers list while another process writes; each call opens its own short
  connection, so Streamlit's script threads never share one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import time
import uuid
import zipfile
import zlib
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

import models.plane_features  # noqa: F401  (registers the PlaneFeatures layer, so saved Playground models load)
from models.config import ConfigError, ExperimentConfig
from models.datasets import Dataset, load_dataset
from models.engine import History, TrainResult
from models.forward import check_archive
from models.keras_datasets import DatasetUnavailable

SCHEMA_VERSION = 1  # PRAGMA user_version of index.sqlite; a new version adds an entry to _MIGRATIONS
STATUSES = ("running", "completed", "cancelled", "diverged", "interrupted")
MAX_SNAPSHOT_BYTES = 64 * 2**20  # weight snapshots kept on disk per run; more are thinned evenly
_HISTORY_FIELDS = ("train_loss", "test_loss", "train_acc", "test_acc", "grad_norms", "seconds", "step_seconds",
                   "penalty")
_SQLITE_TIMEOUT_S = 30.0  # how long a writer waits for another process's write to end
_OWNER_LOCK_WAIT_S = 10.0  # how long opening waits for another process's liveness check to let go of our lock
# What np.load raises for a missing, truncated or garbled .npz (a zip of .npy files) or a missing array in it.
_NPZ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


class RunUnavailable(Exception):
    """A stored run cannot be opened (its files are missing, corrupt or from an unknown version)."""


class StoreReadOnly(Exception):
    """The store was written by a newer version of the dashboard; it is listed but not changed."""


@dataclass(frozen=True)
class StoredRun:
    """One row of the index: everything the Runs page lists, without loading the model."""

    run_id: str  # folder name under runs/, a random hex id
    name: str  # shown to the user; starts as the run's readable label, can be renamed
    page: str  # the page that trained it, e.g. "Playground"
    status: str  # one of STATUSES
    config_json: str  # ExperimentConfig.to_dict() as JSON
    config_key: str  # ExperimentConfig.key(): equal configs train equal runs
    created: float  # Unix time training started
    finished: float | None  # Unix time it ended; None while running or when interrupted
    epochs_done: int  # epochs with a recorded history
    diverged_epoch: int | None  # the first non-finite epoch, for status "diverged"
    train_loss: float | None  # last epoch's values; None before the first epoch
    test_loss: float | None
    train_acc: float | None  # None for regression
    test_acc: float | None
    seconds: float | None  # wall time of the training
    tags: tuple[str, ...]  # user's tags

    @property
    def config(self) -> ExperimentConfig:
        """The run's config (raises ConfigError for a config this version cannot read)."""
        return ExperimentConfig.from_dict(json.loads(self.config_json))

    @property
    def openable(self) -> bool:
        """Whether the run has a model to open: it finished at least one epoch and was written."""
        return self.status in ("completed", "cancelled", "diverged") and self.epochs_done > 0


_COLUMNS = ("run_id", "name", "page", "status", "config_json", "config_key", "created", "finished", "epochs_done",
            "diverged_epoch", "train_loss", "test_loss", "train_acc", "test_acc", "seconds", "tags", "owner")


def _create_v1(conn: sqlite3.Connection) -> None:
    conn.execute("""CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, name TEXT NOT NULL, page TEXT NOT NULL, status TEXT NOT NULL,
        config_json TEXT NOT NULL, config_key TEXT NOT NULL, created REAL NOT NULL, finished REAL,
        epochs_done INTEGER NOT NULL DEFAULT 0, diverged_epoch INTEGER, train_loss REAL, test_loss REAL,
        train_acc REAL, test_acc REAL, seconds REAL, tags TEXT NOT NULL DEFAULT '[]', owner TEXT)""")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_by_key ON runs (config_key, status)")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status)")


# Version n's entry brings a database at version n to n + 1. Version 0 is a new, empty file.
_MIGRATIONS = {0: _create_v1}


# ----------------------------------------------------------------------------------------------------
# Process ownership: one lock file per live process that writes to a store.

_OWNER = uuid.uuid4().hex  # this process's owner id
_HELD_LOCKS: dict[Path, object] = {}  # open lock files per store, kept for the process's life


def _try_lock(handle) -> bool:
    """Take an exclusive lock on an open file without waiting; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _owner_alive(owners: Path, owner: str | None) -> bool:
    """Whether the process that wrote `owner` into a row still runs (it holds its lock file)."""
    if owner == _OWNER:
        return True
    if not owner:
        return False
    path = owners / f"{owner}.lock"
    if not path.is_file():
        return False
    try:
        handle = open(path, "a+b")  # noqa: SIM115
    except OSError:
        return False
    with handle:
        if _try_lock(handle):
            return False  # nobody holds it: the owner died (the lock goes when we close the file)
    return True


def _remove_if_dead(path: Path) -> None:
    """Delete a dead owner's lock file, unlinking it while we hold its lock: a process that opened the file just
    before (and is waiting for the lock) then sees that the file it locked is gone and makes a new one."""
    try:
        handle = open(path, "r+b")  # noqa: SIM115
    except OSError:  # gone already, or not a file
        return
    with handle:
        if not _try_lock(handle):
            return  # alive
        try:
            path.unlink()
            return
        except OSError:  # Windows cannot remove an open file: remove it after closing, as a fallback
            pass
    path.unlink(missing_ok=True)


def _is_same_file(handle, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------------


def _finite_or_none(values: list[float]) -> float | None:
    if not values:
        return None
    value = float(values[-1])
    return value if math.isfinite(value) else None


def _json_float(value):
    """JSON has no NaN: NaN and inf become None (read back as NaN)."""
    if isinstance(value, list):
        return [_json_float(v) for v in value]
    return float(value) if math.isfinite(value) else None


def _float_list(values) -> list:
    if values and isinstance(values[0], list):
        return [_float_list(v) for v in values]
    return [float("nan") if v is None else float(v) for v in values]


def _thin(epochs: list[int], arrays: list[np.ndarray], budget: int) -> list[int]:
    """Indices of the snapshots to keep within `budget` bytes: the first, the last and evenly between."""
    size = sum(a.nbytes for a in arrays) or 1
    if size <= budget:
        return list(range(len(epochs)))
    keep = max(2, int(len(epochs) * budget / size))
    return sorted(set(np.linspace(0, len(epochs) - 1, keep).round().astype(int).tolist()))


class RunStore:
    """The runs in one store folder. Cheap to create; `open_store` keeps one per folder and process."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.warnings: list[str] = []  # what was skipped or repaired on opening, for the page to show
        self.read_only = False
        for sub in ("runs", "tmp", "owners"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._hold_owner_lock()
        self._open_index()
        if not self.read_only:
            self.recover()

    # -- opening -------------------------------------------------------------------------------------

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite"

    def _hold_owner_lock(self) -> None:
        """Lock this process's owner file. Another process's `recover` may hold it for a moment (checking whether
        we are alive) or remove it (if it checked before we locked): wait for the first, start again after the
        second, so that we never run without holding the lock (others would take our runs for dead)."""
        if self.root in _HELD_LOCKS:
            return
        path = self.root / "owners" / f"{_OWNER}.lock"
        deadline = time.monotonic() + _OWNER_LOCK_WAIT_S
        while True:
            handle = open(path, "a+b")  # noqa: SIM115 (held for the process's life)
            if _try_lock(handle) and _is_same_file(handle, path):
                break
            handle.close()
            if time.monotonic() > deadline:
                handle = open(path, "a+b")  # noqa: SIM115
                self.warnings.append(f"Could not lock {path.name}; other processes may take this one's runs for "
                                     "interrupted.")
                break
            time.sleep(0.01)
        _HELD_LOCKS[self.root] = handle

    @contextmanager
    def _connect(self):
        """A short-lived connection in a transaction (committed on success, rolled back on error)."""
        with closing(sqlite3.connect(self.index_path, timeout=_SQLITE_TIMEOUT_S)) as conn:
            conn.row_factory = sqlite3.Row
            with conn:
                yield conn

    def _open_index(self) -> None:
        """Create or migrate the index; set a corrupt one aside and rebuild it from the run folders."""
        try:
            self._migrate()
        except sqlite3.DatabaseError as err:
            aside = self.index_path.with_name(f"index.sqlite.corrupt-{int(time.time())}")
            self.index_path.replace(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.index_path}{suffix}").unlink(missing_ok=True)
            self.warnings.append(f"The run index could not be read ({err}); it was moved to {aside.name} and "
                                 "rebuilt from the run folders.")
            self._migrate()

    def _migrate(self) -> None:
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: readers never wait for a writer
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                self.read_only = True
                self.warnings.append(f"The run index is from a newer version of the dashboard (schema {version}, "
                                     f"this one reads {SCHEMA_VERSION}); runs are listed but nothing is written.")
                return
            while version < SCHEMA_VERSION:
                _MIGRATIONS[version](conn)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("SELECT count(*) FROM runs").fetchone()  # a corrupt file fails here, not later

    def recover(self) -> None:
        """Settle what a dead process left: its "running" rows, its half-written folders, and run folders
        that have no row (copied in, or an index that was rebuilt)."""
        owners = self.root / "owners"
        with self._connect() as conn:
            rows = conn.execute("SELECT run_id, owner FROM runs WHERE status = 'running'").fetchall()
        dead = {row["owner"] for row in rows if not _owner_alive(owners, row["owner"])}
        for row in rows:
            if row["owner"] in dead:
                self._settle_dead_run(row["run_id"])
        for folder in (self.root / "tmp").iterdir():
            owner = folder.name.rpartition("-")[2]
            if not _owner_alive(owners, owner):
                shutil.rmtree(folder, ignore_errors=True)
        for lock in owners.glob("*.lock"):
            if lock.stem != _OWNER:
                _remove_if_dead(lock)
        self._adopt_unindexed_folders()

    def _settle_dead_run(self, run_id: str) -> None:
        """A run whose process died: complete if its folder was renamed into place, else interrupted."""
        try:
            info = self._read_run_json(run_id)
        except RunUnavailable:
            info = None
        with self._connect() as conn:
            if info is not None:
                conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in info['row'])}, owner = NULL "
                             "WHERE run_id = ?",
                             [*self._row_values(info["row"]), run_id])
            else:
                conn.execute("UPDATE runs SET status = 'interrupted', owner = NULL WHERE run_id = ?", (run_id,))

    def _adopt_unindexed_folders(self) -> None:
        with self._connect() as conn:
            known = {row[0] for row in conn.execute("SELECT run_id FROM runs")}
        for folder in sorted((self.root / "runs").iterdir()):
            if folder.name in known:
                continue
            try:
                info = self._read_run_json(folder.name)
                row = {**info["row"], "run_id": folder.name}
                ExperimentConfig.from_dict(json.loads(row["config_json"]))
            except (RunUnavailable, ConfigError, KeyError, TypeError, ValueError) as err:
                self.warnings.append(f"Skipped runs/{folder.name}: not a run this version can read ({err}).")
                continue
            with self._connect() as conn:
                _insert(conn, row, "INSERT OR IGNORE")

    # -- writing -------------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreReadOnly(f"The run store at {self.root} is from a newer version; it is not changed.")

    @staticmethod
    def _row_values(row: dict) -> list:
        return [json.dumps(list(v)) if k == "tags" else v for k, v in row.items()]

    def begin(self, config: ExperimentConfig, page: str, name: str) -> str:
        """Record a run that starts training now (status "running", owned by this process); its id."""
        self._check_writable()
        run_id = uuid.uuid4().hex[:16]
        row = dict(run_id=run_id, name=name, page=page, status="running", config_json=json.dumps(config.to_dict()),
                   config_key=config.key(), created=time.time(), owner=_OWNER)
        with self._connect() as conn:
            _insert(conn, row)
        return run_id

    def finish(self, run_id: str, result: TrainResult, status: str | None = None, name: str | None = None) -> None:
        """Write the run's folder (atomically), then its row with `status` (default: the result's own) and
        `name` (default: the name it was begun with)."""
        self._check_writable()
        status = status or result.status
        if status not in STATUSES[1:4]:
            raise ValueError(f"A finished run is completed, cancelled or diverged; got status {status!r}.")
        with self._connect() as conn:
            created = conn.execute("SELECT created FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if created is None:
            raise RunUnavailable(f"No run {run_id!r} was begun in {self.root}.")
        row = self._finished_row(result, status, created[0])
        if name:
            row["name"] = name
        tmp = self.root / "tmp" / f"{run_id}-{_OWNER}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self._write_folder(tmp, run_id, result, row)
        final = self.root / "runs" / run_id
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)  # the folder appears whole or not at all
        with self._connect() as conn:  # the row last: only now is the run listed as finished
            conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in row)}, owner = NULL WHERE run_id = ?",
                         [*self._row_values(row), run_id])

    def save(self, result: TrainResult, page: str, name: str) -> str:
        """Begin and finish in one call: for a run trained before it could be recorded; its id."""
        run_id = self.begin(result.config, page, name)
        try:
            self.finish(run_id, result)
        except BaseException:
            self.discard(run_id)
            raise
        return run_id

    def discard(self, run_id: str) -> None:
        """Forget a run that never finished an epoch (nothing worth listing)."""
        self.delete([run_id])

    @staticmethod
    def _finished_row(result: TrainResult, status: str, created: float) -> dict:
        h = result.history
        return dict(status=status, finished=time.time(), epochs_done=len(h), diverged_epoch=result.diverged_epoch,
                    train_loss=_finite_or_none(h.train_loss), test_loss=_finite_or_none(h.test_loss),
                    train_acc=_finite_or_none(h.train_acc), test_acc=_finite_or_none(h.test_acc),
                    seconds=float(h.seconds[-1]) if h.seconds else None, created=created)

    def _write_folder(self, folder: Path, run_id: str, result: TrainResult, row: dict) -> None:
        result.model.save(folder / "model.keras")
        keep = _thin(result.snapshot_epochs, result.snapshots + result.state_snapshots, MAX_SNAPSHOT_BYTES)
        arrays = dict(epochs=np.asarray([result.snapshot_epochs[i] for i in keep], dtype="int64"),
                      snapshots=np.stack([result.snapshots[i] for i in keep]),
                      state_snapshots=np.stack([result.state_snapshots[i] for i in keep]))
        if result.last_weights is not None:
            arrays["last_weights"] = result.last_weights
        if result.last_state is not None:
            arrays["last_state"] = result.last_state
        np.savez(folder / "snapshots.npz", **arrays)
        if result.config.dataset == "csv":  # an uploaded table lives only in memory: keep the split with the run
            d = result.dataset
            np.savez(folder / "data.npz", x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)
        with self._connect() as conn:
            base = conn.execute("SELECT name, page, config_json, config_key, tags FROM runs WHERE run_id = ?",
                                (run_id,)).fetchone()
        info = dict(
            schema=SCHEMA_VERSION,
            row={**dict(base), **row, "tags": json.loads(base["tags"])},
            history={f: _json_float(getattr(result.history, f)) for f in _HISTORY_FIELDS},
            layer_names=result.layer_names,
            dataset=dict(name=result.dataset.name, class_names=list(result.dataset.class_names),
                         task=result.dataset.task, feature_names=list(result.dataset.feature_names)),
        )
        (folder / "run.json").write_text(json.dumps(info))

    def rename(self, run_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError("A run's name cannot be empty.")
        self._update_row_and_json(run_id, name=name)

    def set_tags(self, run_id: str, tags: list[str]) -> None:
        clean = tuple(dict.fromkeys(t.strip() for t in tags if t.strip()))
        self._update_row_and_json(run_id, tags=clean)

    def _update_row_and_json(self, run_id: str, **changes) -> None:
        """Change the row and, for a finished run, its run.json (which rebuilds the row if the index is lost)."""
        self._check_writable()
        with self._connect() as conn:
            conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in changes)} WHERE run_id = ?",
                         [*self._row_values(changes), run_id])
            # Still in the transaction, which holds SQLite's write lock: writers of run.json in other processes
            # and threads wait, so none reads it while another rewrites it and undoes its change.
            path = self.root / "runs" / run_id / "run.json"
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):  # not finished yet, or a damaged run (it cannot be opened anyway)
                info = None
            if isinstance(info, dict) and isinstance(info.get("row"), dict):
                info["row"].update({k: list(v) if k == "tags" else v for k, v in changes.items()})
                tmp = path.with_name(f"run.json.{uuid.uuid4().hex}.tmp")
                try:
                    tmp.write_text(json.dumps(info))
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)

    def delete(self, run_ids: list[str]) -> None:
        """Remove runs: in one transaction the rows go and the folders move out of runs/ (into tmp/, as
        this process's, so a crash leaves them to the next recovery); then the folders are removed. A
        process opening the store meanwhile never finds a rowless run folder to adopt back."""
        self._check_writable()
        trash = []
        with self._connect() as conn:
            conn.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in run_ids])
            for run_id in run_ids:
                folder = self.root / "runs" / run_id
                if folder.exists():
                    target = self.root / "tmp" / f"{run_id}deleted{uuid.uuid4().hex[:6]}-{_OWNER}"
                    os.replace(folder, target)
                    trash.append(target)
        for folder in trash:
            shutil.rmtree(folder, ignore_errors=True)

    # -- reading -------------------------------------------------------------------------------------

    def list_runs(self) -> list[StoredRun]:
        """Every run in the index, newest first: rows only, no model is opened."""
        columns = ", ".join(c for c in _COLUMNS if c != "owner")
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {columns} FROM runs ORDER BY created DESC").fetchall()
        return [_stored_run(row) for row in rows]

    def get(self, run_id: str) -> StoredRun:
        columns = ", ".join(c for c in _COLUMNS if c != "owner")
        with self._connect() as conn:
            row = conn.execute(f"SELECT {columns} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunUnavailable(f"No stored run {run_id!r}; it may have been deleted.")
        return _stored_run(row)

    def find_finished(self, config_key: str) -> StoredRun | None:
        """The newest completed run of a config, to reuse instead of training again."""
        columns = ", ".join(c for c in _COLUMNS if c != "owner")
        with self._connect() as conn:
            row = conn.execute(f"SELECT {columns} FROM runs WHERE config_key = ? AND status = 'completed' "
                               "ORDER BY created DESC LIMIT 1", (config_key,)).fetchone()
        return None if row is None else _stored_run(row)

    def _read_run_json(self, run_id: str) -> dict:
        path = self.root / "runs" / run_id / "run.json"
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise RunUnavailable(f"Run {run_id} has no files (run.json is missing).") from err
        except (OSError, ValueError) as err:
            raise RunUnavailable(f"Run {run_id}'s run.json cannot be read: {err}") from err
        if not isinstance(info, dict) or info.get("schema") != SCHEMA_VERSION or "row" not in info:
            raise RunUnavailable(f"Run {run_id}'s run.json is not a run of schema {SCHEMA_VERSION}.")
        return info

    def history(self, run_id: str) -> History:
        """The run's per-epoch records, read from run.json alone (for comparison charts)."""
        info = self._read_run_json(run_id)
        try:
            return History(**{f: _float_list(info["history"][f]) for f in _HISTORY_FIELDS})
        except (KeyError, TypeError, ValueError) as err:
            raise RunUnavailable(f"Run {run_id}'s history cannot be read: {err}") from err

    def load(self, run_id: str) -> TrainResult:
        """The whole run, as training returned it: model, data split, history and snapshots.

        Raises:
            RunUnavailable: the run is not finished, or a file is missing or corrupt (the message says which).
        """
        row = self.get(run_id)
        if not row.openable:
            raise RunUnavailable(f"Run {row.name!r} is {row.status} with {row.epochs_done} epochs: nothing to open.")
        folder = self.root / "runs" / run_id
        info = self._read_run_json(run_id)
        history = self.history(run_id)
        try:
            config = row.config
            with zipfile.ZipFile(folder / "model.keras") as archive:
                check_archive(archive)  # the same size and member checks as an upload: the folder may be copied in
            model = keras.saving.load_model(folder / "model.keras", safe_mode=True, compile=False)
        except ConfigError as err:
            raise RunUnavailable(f"Run {row.name!r} has a config this version cannot read: {err}") from err
        except Exception as err:  # Keras raises many kinds for a damaged file
            raise RunUnavailable(f"Run {row.name!r}: its model file cannot be read ({type(err).__name__}: {err}).") \
                from err
        try:
            with np.load(folder / "snapshots.npz") as arrays:
                snaps = {k: arrays[k] for k in arrays.files}
            missing = {"epochs", "snapshots", "state_snapshots"} - set(snaps)
            if missing:
                raise KeyError(f"no array {', '.join(sorted(missing))}")
        except _NPZ_ERRORS as err:
            raise RunUnavailable(f"Run {row.name!r}: its weight snapshots cannot be read "
                                 f"({type(err).__name__}: {err}).") from err
        dataset = self._dataset(folder, config, info["dataset"], row.name)
        return TrainResult(
            config=config, dataset=dataset, model=model, history=history, layer_names=list(info["layer_names"]),
            snapshot_epochs=[int(e) for e in snaps["epochs"]], snapshots=list(snaps["snapshots"]),
            state_snapshots=list(snaps["state_snapshots"]), status=row.status, diverged_epoch=row.diverged_epoch,
            last_weights=snaps.get("last_weights"), last_state=snaps.get("last_state"),
        )

    @staticmethod
    def _dataset(folder: Path, config: ExperimentConfig, meta: dict, name: str) -> Dataset:
        if config.dataset != "csv":
            try:
                return load_dataset(config)  # deterministic from the config: nothing stored
            except DatasetUnavailable as err:
                raise RunUnavailable(f"Run {name!r}: its data cannot be loaded ({err}).") from err
        try:
            with np.load(folder / "data.npz") as a:
                arrays = {k: a[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except _NPZ_ERRORS as err:
            raise RunUnavailable(f"Run {name!r}: its uploaded table cannot be read ({type(err).__name__}: {err}).") \
                from err
        return Dataset(name=meta["name"], class_names=tuple(meta["class_names"]), task=meta["task"],
                       feature_names=tuple(meta["feature_names"]), **arrays)


def _insert(conn: sqlite3.Connection, row: dict, verb: str = "INSERT") -> None:
    values = [json.dumps(list(v)) if k == "tags" else v for k, v in row.items()]
    conn.execute(f"{verb} INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", values)


def _stored_run(row: sqlite3.Row) -> StoredRun:
    values = dict(row)
    values["tags"] = tuple(json.loads(values["tags"] or "[]"))
    return StoredRun(**values)


_OPEN: dict[Path, RunStore] = {}


def open_store(root: Path | str) -> RunStore:
    """The store in `root`, opened (and recovered) once per process."""
    key = Path(root).expanduser().resolve()
    if key not in _OPEN:
        _OPEN[key] = RunStore(key)
    return _OPEN[key]



def close_all() -> None:
    """Forget every open store and release this process's owner locks (tests; a process's end does it too)."""
    _OPEN.clear()
    for handle in _HELD_LOCKS.values():
        handle.close()
    _HELD_LOCKS.clear()
