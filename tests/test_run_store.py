"""The local run store (models/run_store.py): round trips, crash recovery, two writing processes, a killed
process, damaged files and index, schema versions, foreign files, and the row-level operations.

Crashes are simulated the way the store detects them: a row's owner is dead when nobody holds the owner's
lock file (owners/<owner>.lock), so a "dead owner" is an owner id whose lock file is unlocked or missing,
and a "live" one is an id whose lock file a handle holds. Two tests start real processes (spawned python
scripts that import the repository), one of which is killed with SIGKILL.
"""

import fcntl
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from contextlib import closing
from pathlib import Path

import keras
import numpy as np
import pytest

from models import csv_data, run_store
from models.config import ExperimentConfig
from models.datasets import load_dataset
from models.engine import History, flat_weights, train
from models.keras_datasets import DatasetUnavailable
from models.run_store import (
    SCHEMA_VERSION,
    RunStore,
    RunUnavailable,
    StoreReadOnly,
    close_all,
    open_store,
)
from models.run_table import runs_table

REPO = Path(__file__).resolve().parents[1]
DEAD = "dead" + "0" * 28  # an owner id nobody holds
LIVE = "live" + "0" * 28  # an owner id a handle in the test holds (another live process, as the store sees it)
SUBPROCESS_TIMEOUT_S = 120


_TRAINED = {}


def _train(config: ExperimentConfig, epochs: int = 3, **changes):
    """A trained run of `config` with these changes; trained once per module (the tests only read results)."""
    config = config.replace(epochs=epochs, **changes)
    if config not in _TRAINED:
        _TRAINED[config] = train(config)
    return _TRAINED[config]


def _sql(store: RunStore, query: str, params=()) -> list[tuple]:
    """Run SQL on the index directly (as another program, or a crash, would leave it)."""
    with closing(sqlite3.connect(store.index_path)) as conn, conn:
        return conn.execute(query, params).fetchall()


def _give_to(store: RunStore, run_id: str, owner: str) -> None:
    _sql(store, "UPDATE runs SET owner = ? WHERE run_id = ?", (owner, run_id))


def _hold_lock(path: Path):
    """A handle holding the lock of `path`, as a live process does with its owner file."""
    handle = open(path, "a+b")  # noqa: SIM115
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _lock_is_held(path: Path) -> bool:
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        return False


def _assert_same_history(a: History, b: History) -> None:
    for field in ("train_loss", "test_loss", "train_acc", "test_acc", "grad_norms", "seconds", "step_seconds",
                  "penalty"):
        np.testing.assert_equal(getattr(b, field), getattr(a, field), err_msg=field)


def _assert_same_weights(original, loaded) -> None:
    """A cheaper check than `_assert_same_run`, for tests about something else: the model's weights and history."""
    np.testing.assert_array_equal(flat_weights(loaded.model), flat_weights(original.model))
    _assert_same_history(original.history, loaded.history)


def _assert_same_run(original, loaded) -> None:
    """Predictions (oracle: Keras' own predict of the original model), history, snapshots, data."""
    x = original.dataset.x_test
    np.testing.assert_allclose(loaded.model.predict(x, verbose=0), original.model.predict(x, verbose=0),
                               rtol=0, atol=1e-6)
    _assert_same_history(original.history, loaded.history)
    assert loaded.snapshot_epochs == original.snapshot_epochs
    assert len(loaded.snapshots) == len(original.snapshots)
    for a, b in zip(original.snapshots + original.state_snapshots, loaded.snapshots + loaded.state_snapshots,
                    strict=True):
        np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(loaded.last_weights, original.last_weights)
    assert loaded.layer_names == original.layer_names
    assert loaded.config == original.config and loaded.status == original.status
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(loaded.dataset, field), getattr(original.dataset, field))
    assert loaded.dataset.class_names == original.dataset.class_names


def _assert_row_matches_history(row, result) -> None:
    h = result.history
    assert row.status == result.status == "completed"
    assert row.epochs_done == len(h) == result.config.epochs
    assert row.train_loss == h.train_loss[-1] and row.test_loss == h.test_loss[-1]  # exactly: JSON and SQLite
    assert row.train_acc == h.train_acc[-1] and row.test_acc == h.test_acc[-1]  # keep every bit of a float
    assert row.seconds == h.seconds[-1]
    assert row.finished is not None and row.finished >= row.created
    assert row.config == result.config and row.config_key == result.config.key()


# ----------------------------------------------------------------------------------------------------------------
# 1. Round trips


def test_a_saved_mlp_run_loads_back_the_same(tmp_path, tiny_config):
    result = _train(tiny_config, epochs=4)
    store = RunStore(tmp_path / "store")
    run_id = store.save(result, "Playground", "circle 4 units")
    close_all()
    loaded = RunStore(tmp_path / "store").load(run_id)
    _assert_same_run(result, loaded)
    row = store.get(run_id)
    assert row.name == "circle 4 units" and row.page == "Playground" and row.openable
    _assert_row_matches_history(row, result)
    _assert_same_history(result.history, store.history(run_id))


def test_a_saved_cnn_run_loads_back_the_same(tmp_path, tiny_cnn_config):
    result = train(tiny_cnn_config.replace(batch_norm=True))  # batch norm: its moving statistics must come back too
    store = RunStore(tmp_path / "store")
    run_id = store.save(result, "Features", "cnn")
    loaded = store.load(run_id)
    _assert_same_run(result, loaded)
    assert result.state_snapshots[-1].size > 0
    _assert_row_matches_history(store.get(run_id), result)


def test_a_csv_run_reloads_its_data_without_the_upload(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    points = rng.normal(size=(60, 2))
    lines = ["height,width,kind"] + [f"{a:.4f},{b:.4f},{'big' if a + b > 0 else 'small'}" for a, b in points]
    table = csv_data.parse_csv(("\n".join(lines) + "\n").encode())
    csv_data.remember(table)
    config = ExperimentConfig(dataset="csv", data_id=table.data_id, n_samples=60, epochs=3, batch_size=16,
                              hidden_layers=(4,))
    result = train(config)
    store = RunStore(tmp_path / "store")
    run_id = store.save(result, "Playground", "my table")
    assert (tmp_path / "store" / "runs" / run_id / "data.npz").exists()

    monkeypatch.setattr(csv_data, "_RECENT", csv_data._RecentTables(csv_data.REMEMBERED_TABLES))  # a new server
    with pytest.raises(DatasetUnavailable):
        load_dataset(config)  # the registry has forgotten the table: only the run's own data.npz can give it
    close_all()
    loaded = RunStore(tmp_path / "store").load(run_id)
    _assert_same_run(result, loaded)
    assert loaded.dataset.name == "csv" and loaded.dataset.class_names == ("big", "small")
    assert loaded.dataset.feature_names == ("height", "width")


# ----------------------------------------------------------------------------------------------------------------
# 2. Atomic write and what a dead owner leaves


def test_reopening_settles_what_a_dead_owner_left_and_keeps_live_owners_runs(tmp_path, tiny_config):
    root = tmp_path / "store"
    store = RunStore(root)
    result = _train(tiny_config)
    dead_unlocked = store.begin(tiny_config, "Playground", "dead, lock file left")
    _give_to(store, dead_unlocked, DEAD)
    (root / "owners" / f"{DEAD}.lock").touch()  # exists, nobody holds it
    dead_no_file = store.begin(tiny_config, "Playground", "dead, no lock file")
    _give_to(store, dead_no_file, "gone" + "0" * 28)
    half_written = root / "tmp" / f"{dead_unlocked}-{DEAD}"
    half_written.mkdir()
    (half_written / "model.keras").write_bytes(b"half a zip")
    # Crash between the rename into runs/ and the row update: the folder is whole, the row still says running.
    renamed = store.save(result, "Playground", "renamed, row not updated")
    _sql(store, "UPDATE runs SET status = 'running', finished = NULL, epochs_done = 0, train_loss = NULL, "
                "test_loss = NULL, train_acc = NULL, test_acc = NULL, seconds = NULL, owner = ? WHERE run_id = ?",
         (DEAD, renamed))
    mine = store.begin(tiny_config, "Playground", "this process, training")
    theirs = store.begin(tiny_config, "Playground", "another live process, training")
    _give_to(store, theirs, LIVE)
    live_tmp = root / "tmp" / f"{theirs}-{LIVE}"
    live_tmp.mkdir()
    with _hold_lock(root / "owners" / f"{LIVE}.lock"):
        close_all()
        reopened = RunStore(root)
        status = {r.run_id: r.status for r in reopened.list_runs()}
        assert status[dead_unlocked] == "interrupted"
        assert status[dead_no_file] == "interrupted"
        assert status[renamed] == "completed"
        assert status[mine] == "running"
        assert status[theirs] == "running"
        assert not half_written.exists()
        assert live_tmp.exists()
        assert not (root / "owners" / f"{DEAD}.lock").exists()  # a dead owner's lock file is cleaned up
        assert (root / "owners" / f"{LIVE}.lock").exists()
    _assert_row_matches_history(reopened.get(renamed), result)
    assert reopened.get(dead_unlocked).finished is None and not reopened.get(dead_unlocked).openable
    assert _sql(reopened, "SELECT owner FROM runs WHERE run_id = ?", (renamed,)) == [(None,)]
    _assert_same_weights(result, reopened.load(renamed))


def test_opening_waits_while_another_process_checks_its_lock(tmp_path):
    """Another process's `recover` holds our lock file for a moment when it checks whether we are alive. A store
    opened at that moment must still end up holding its lock, or every other process would take its runs for
    dead."""
    root = tmp_path / "store"
    (root / "owners").mkdir(parents=True)
    path = root / "owners" / f"{run_store._OWNER}.lock"
    checker = _hold_lock(path)
    lets_go = threading.Timer(0.3, checker.close)
    lets_go.start()
    RunStore(root)
    lets_go.join()  # the checker has let go: the lock is now held only if the store took it
    assert _lock_is_held(path)


def test_opening_locks_a_new_file_when_its_lock_file_was_removed_meanwhile(tmp_path, monkeypatch):
    """Another process's `recover` can find our freshly created lock file unlocked and delete it; the file we then
    lock must be the one in owners/, not the deleted one."""
    root = tmp_path / "store"
    real_try_lock, removed = run_store._try_lock, []

    def try_lock_after_removal(handle):
        if not removed:  # the first time: the file was deleted between our open and our lock
            removed.append(Path(handle.name))
            Path(handle.name).unlink()
        return real_try_lock(handle)

    monkeypatch.setattr(run_store, "_try_lock", try_lock_after_removal)
    RunStore(root)
    monkeypatch.setattr(run_store, "_try_lock", real_try_lock)
    path = root / "owners" / f"{run_store._OWNER}.lock"
    assert removed == [path]
    assert path.exists() and _lock_is_held(path)


# ----------------------------------------------------------------------------------------------------------------
# Subprocesses: spawned python scripts that import the repository.

_PRELUDE = f"""
import json, os, sys, time
sys.path.insert(0, {str(REPO)!r})
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from pathlib import Path
from models.config import ExperimentConfig
from models.engine import train
from models.run_store import RunStore
TINY = dict(dataset="circle", n_samples=120, batch_size=16, hidden_layers=(4,))
"""

_WORKER = _PRELUDE + """
root, shared_root, who, sync = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
store = RunStore(root)
(sync / f"ready-{who}").touch()
while not (sync / "go").exists():
    time.sleep(0.002)
shared, shared_id = RunStore(shared_root), (sync / "go").read_text()
ids = []
for i in range(8):
    result = train(ExperimentConfig(**TINY, epochs=2, seed=100 * who + i))
    run_id = store.save(result, "Worker", f"w{who}-{i}")
    store.rename(run_id, f"worker {who} run {i}")
    store.set_tags(run_id, [f"w{who}", f"i{i}"])
    ids.append(run_id)
    for k in range(5):  # the two workers change one shared run at once: one its name, the other its tags
        if who == 0:
            shared.rename(shared_id, f"shared {i}.{k}")
        else:
            shared.set_tags(shared_id, [f"t{i}.{k}", "both"])
print(json.dumps(ids))
"""

_KILLED = _PRELUDE + """
import models.run_store as run_store
root, marker = Path(sys.argv[1]), Path(sys.argv[2])
store = RunStore(root)
short = train(ExperimentConfig(**TINY, epochs=2))
being_written = store.begin(short.config, "Playground", "being written")
training = store.begin(ExperimentConfig(**TINY, epochs=2000), "Playground", "training")
write_folder = run_store.RunStore._write_folder

def stalled(self, folder, *args):  # the folder is written under tmp/ but not yet renamed into runs/
    write_folder(self, folder, *args)
    marker.write_text(json.dumps(dict(training=training, being_written=being_written, tmp=str(folder))))
    time.sleep(600)

run_store.RunStore._write_folder = stalled

def on_epoch(result):
    if len(result.history) == 3:  # mid-training of the long run: write the short one, which stalls
        store.finish(being_written, short)

train(ExperimentConfig(**TINY, epochs=2000), on_epoch=on_epoch)
"""


def _start(script: str, *args, tmp_path: Path) -> subprocess.Popen:
    path = tmp_path / f"script-{uuid.uuid4().hex[:8]}.py"
    path.write_text(script)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "TF_NUM_INTRAOP_THREADS": "1",
           "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}  # two processes share two cores
    return subprocess.Popen([sys.executable, str(path), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


def _wait_for(condition, procs, what: str, timeout: float = SUBPROCESS_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"a subprocess ended before {what}: {p.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# 3. Two processes at once


def test_two_processes_saving_at_once_lose_nothing(tmp_path, tiny_config):
    root, shared_root, sync = tmp_path / "store", tmp_path / "shared", tmp_path / "sync"
    sync.mkdir()
    workers = [_start(_WORKER, root, shared_root, who, sync, tmp_path=tmp_path) for who in (0, 1)]
    try:
        shared_id = RunStore(shared_root).save(_train(tiny_config, epochs=2), "Playground", "shared")
        _wait_for(lambda: all((sync / f"ready-{w}").exists() for w in (0, 1)), workers, "both workers are ready")
        (sync / "go").write_text(shared_id)  # both start writing at once
        store = RunStore(root)
        listings = 0
        while any(w.poll() is None for w in workers):  # a reader lists while both write
            for row in store.list_runs():
                if row.status == "completed":  # listed as finished only once its folder is whole
                    assert (root / "runs" / row.run_id / "run.json").exists()
            listings += 1
            time.sleep(0.05)
        outputs = [w.communicate(timeout=SUBPROCESS_TIMEOUT_S) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-3000:]
    ids = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert listings > 0
    close_all()
    store = RunStore(root)
    rows = store.list_runs()
    assert len(rows) == 16 and len({r.run_id for r in rows}) == 16
    assert sorted(r.run_id for r in rows) == sorted(ids[0] + ids[1])
    assert {r.status for r in rows} == {"completed"}
    assert not any((root / "tmp").iterdir())
    by_id = {r.run_id: r for r in rows}
    for who in (0, 1):
        for i, run_id in enumerate(ids[who]):
            row = by_id[run_id]
            assert row.name == f"worker {who} run {i}" and row.tags == (f"w{who}", f"i{i}")
            info = json.loads((root / "runs" / run_id / "run.json").read_text())
            assert info["row"]["name"] == row.name and info["row"]["tags"] == list(row.tags)
            loaded = store.load(run_id)
            assert len(loaded.history) == 2 and loaded.config.seed == 100 * who + i
    # The shared run kept both processes' last changes, in the row and in run.json.
    shared = RunStore(shared_root)
    row = shared.get(shared_id)
    assert row.name == "shared 7.4" and row.tags == ("t7.4", "both")
    info = json.loads((shared_root / "runs" / shared_id / "run.json").read_text())
    assert info["row"]["name"] == "shared 7.4" and info["row"]["tags"] == ["t7.4", "both"]
    assert not list((shared_root / "runs" / shared_id).glob("*.tmp"))


def test_a_rename_and_a_tag_change_at_once_keep_both_in_run_json(tmp_path, tiny_config, monkeypatch):
    """Two writers of one run.json (threads here, or two servers' processes): the second must not read it while the
    first is rewriting it, or it writes back what it read and undoes the first one's change. The renamer is
    paused right after reading run.json, for as long as the tag change needs (at most 0.5 s)."""
    store = RunStore(tmp_path / "store")
    run_id = store.save(_train(tiny_config, epochs=2), "Playground", "before")
    renamer_read, tags_done = threading.Event(), threading.Event()
    real_loads = json.loads

    def loads_then_pause(text, *args, **kwargs):
        value = real_loads(text, *args, **kwargs)
        if threading.current_thread().name == "renamer":
            renamer_read.set()
            tags_done.wait(timeout=0.5)
        return value

    monkeypatch.setattr(json, "loads", loads_then_pause)
    renamer = threading.Thread(target=store.rename, args=(run_id, "after"), name="renamer")
    renamer.start()
    assert renamer_read.wait(timeout=10)
    store.set_tags(run_id, ["kept"])
    tags_done.set()
    renamer.join(timeout=10)
    monkeypatch.undo()
    row = store.get(run_id)
    info = json.loads((tmp_path / "store" / "runs" / run_id / "run.json").read_text())
    assert (row.name, row.tags) == ("after", ("kept",))
    assert (info["row"]["name"], info["row"]["tags"]) == ("after", ["kept"])
    assert sorted(p.name for p in (tmp_path / "store" / "runs" / run_id).iterdir()) == [
        "model.keras", "run.json", "snapshots.npz"]  # no temporary file left behind


# 4. SIGKILL


def test_a_process_killed_mid_training_leaves_its_run_interrupted(tmp_path, tiny_config):
    root, marker = tmp_path / "store", tmp_path / "marker.json"
    child = _start(_KILLED, root, marker, tmp_path=tmp_path)
    try:
        _wait_for(marker.exists, [child], "the child is mid-training")
        ids = json.loads(marker.read_text())
        assert Path(ids["tmp"]).parent == root / "tmp" and (Path(ids["tmp"]) / "run.json").exists()
        watching = RunStore(root)  # opened while the child lives: its rows are left alone
        assert {watching.get(ids[k]).status for k in ("training", "being_written")} == {"running"}
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == -signal.SIGKILL
    close_all()
    store = RunStore(root)
    rows = {r.run_id: r for r in store.list_runs()}
    assert rows[ids["training"]].status == "interrupted"
    assert rows[ids["being_written"]].status == "interrupted"  # its folder never reached runs/
    assert not any((root / "tmp").iterdir())
    assert not (root / "runs" / ids["being_written"]).exists()
    assert _sql(store, "PRAGMA integrity_check") == [("ok",)]
    with pytest.raises(RunUnavailable, match="interrupted"):
        store.load(ids["training"])
    result = _train(tiny_config, epochs=2)
    run_id = store.save(result, "Playground", "after the crash")
    assert store.get(run_id).status == "completed" and len(store.load(run_id).history) == 2
    assert len(store.list_runs()) == 3


# ----------------------------------------------------------------------------------------------------------------
# 5. Many runs


def test_200_stored_runs_list_in_under_a_second(tmp_path, tiny_config):
    root = tmp_path / "store"
    store = RunStore(root)
    first = store.save(_train(tiny_config, epochs=2), "Playground", "run 0")
    info = json.loads((root / "runs" / first / "run.json").read_text())
    created = info["row"]["created"]
    for i in range(1, 200):  # copies of its folder under new ids, each with a name and date of its own
        run_id = uuid.uuid4().hex[:16]
        shutil.copytree(root / "runs" / first, root / "runs" / run_id)
        info["row"].update(name=f"run {i}", created=created - i)
        (root / "runs" / run_id / "run.json").write_text(json.dumps(info))
    close_all()
    store = RunStore(root)  # rows for the 199 folders come from the store's own adoption of run folders
    assert _sql(store, "SELECT count(*) FROM runs") == [(200,)]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        table = runs_table(store.list_runs())
        times.append(time.perf_counter() - start)
    assert len(table) == 200 and table["name"].tolist()[:3] == ["run 0", "run 1", "run 2"]
    assert statistics.median(times) < 1.0, times
    assert len(store.load(table.index[-1]).history) == 2


# ----------------------------------------------------------------------------------------------------------------
# 6. Damaged run files


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(2048))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("file, damage, message", [
    ("model.keras", _garbage, "its model file cannot be read"),
    ("model.keras", Path.unlink, "its model file cannot be read"),
    ("snapshots.npz", Path.unlink, "its weight snapshots cannot be read"),
    ("snapshots.npz", _truncate, "its weight snapshots cannot be read"),
    ("snapshots.npz", _garbage, "its weight snapshots cannot be read"),
    ("run.json", _garbage, "run.json cannot be read"),
    ("run.json", Path.unlink, "run.json is missing"),
], ids=["garbage model", "missing model", "missing snapshots", "truncated snapshots", "garbage snapshots",
        "garbage run.json", "missing run.json"])
def test_a_damaged_run_is_listed_but_refuses_to_load(tmp_path, tiny_config, file, damage, message):
    store = RunStore(tmp_path / "store")
    result = _train(tiny_config, epochs=2)
    good = store.save(result, "Playground", "good")
    damaged = store.save(result, "Playground", "damaged")
    damage(tmp_path / "store" / "runs" / damaged / file)
    close_all()
    store = RunStore(tmp_path / "store")
    assert {r.name for r in store.list_runs()} == {"good", "damaged"}
    with pytest.raises(RunUnavailable, match=message):
        store.load(damaged)
    _assert_same_weights(result, store.load(good))


def test_a_csv_run_without_its_data_file_refuses_to_load(tmp_path):
    lines = ["a,b,c"] + [f"{i},{i % 7},{i % 2}" for i in range(30)]
    table = csv_data.parse_csv(("\n".join(lines) + "\n").encode())
    csv_data.remember(table)
    result = train(ExperimentConfig(dataset="csv", data_id=table.data_id, n_samples=30, epochs=2, batch_size=8,
                                    hidden_layers=(3,)))
    store = RunStore(tmp_path / "store")
    run_id = store.save(result, "Playground", "table")
    _truncate(tmp_path / "store" / "runs" / run_id / "data.npz")
    with pytest.raises(RunUnavailable, match="its uploaded table cannot be read"):
        store.load(run_id)


# ----------------------------------------------------------------------------------------------------------------
# 7. Damaged index


def test_a_corrupt_index_is_set_aside_and_rebuilt_from_the_run_folders(tmp_path, tiny_config):
    root = tmp_path / "store"
    store = RunStore(root)
    result = _train(tiny_config, epochs=2)
    first = store.save(result, "Playground", "first")
    second = store.save(result, "Activation lab", "second")
    store.rename(first, "renamed first")
    store.set_tags(second, ["keep", "me"])
    close_all()
    _garbage(store.index_path)
    store = RunStore(root)
    aside = list(root.glob("index.sqlite.corrupt-*"))
    assert len(aside) == 1
    assert any(aside[0].name in w and "could not be read" in w for w in store.warnings), store.warnings
    rows = {r.run_id: r for r in store.list_runs()}
    assert set(rows) == {first, second}
    assert rows[first].name == "renamed first" and rows[first].page == "Playground"
    assert rows[second].name == "second" and rows[second].tags == ("keep", "me")
    assert rows[second].page == "Activation lab"
    for row in rows.values():
        _assert_row_matches_history(row, result)
    _assert_same_weights(result, store.load(second))
    assert _sql(store, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


# ----------------------------------------------------------------------------------------------------------------
# 8. Schema


def test_a_new_store_has_this_schema_version_and_wal_journal(tmp_path):
    store = RunStore(tmp_path / "new")
    assert _sql(store, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _sql(store, "PRAGMA journal_mode") == [("wal",)]
    assert store.read_only is False and store.warnings == [] and store.list_runs() == []


def test_an_index_from_a_newer_version_opens_read_only(tmp_path, tiny_config):
    root = tmp_path / "store"
    store = RunStore(root)
    result = _train(tiny_config, epochs=2)
    run_id = store.save(result, "Playground", "from an older version")
    _sql(store, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    close_all()
    store = RunStore(root)
    assert store.read_only
    assert any("newer version" in w for w in store.warnings), store.warnings
    assert [r.name for r in store.list_runs()] == ["from an older version"]
    for change in (lambda: store.begin(tiny_config, "Playground", "new"),
                   lambda: store.save(result, "Playground", "new"),
                   lambda: store.rename(run_id, "other"),
                   lambda: store.set_tags(run_id, ["x"]),
                   lambda: store.delete([run_id])):
        with pytest.raises(StoreReadOnly):
            change()
    assert [(r.run_id, r.name, r.tags) for r in store.list_runs()] == [(run_id, "from an older version", ())]
    assert (root / "runs" / run_id / "model.keras").exists()
    assert _sql(store, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]


# ----------------------------------------------------------------------------------------------------------------
# 9. Foreign files


def test_foreign_files_and_folders_are_skipped(tmp_path, tiny_config):
    root = tmp_path / "store"
    store = RunStore(root)
    run_id = store.save(_train(tiny_config, epochs=2), "Playground", "real")
    close_all()
    (root / "notes.txt").write_text("mine")
    (root / "backup").mkdir()
    (root / "backup" / "old.bin").write_bytes(os.urandom(64))
    (root / "runs" / "stray.txt").write_text("stray")
    (root / "runs" / "not-a-run").mkdir()
    (root / "runs" / "not-a-run" / "picture.png").write_bytes(os.urandom(64))
    (root / "runs" / "wrong-json").mkdir()
    (root / "runs" / "wrong-json" / "run.json").write_text('{"schema": 99}')
    (root / "tmp" / "readme.txt").write_text("stray")
    (root / "owners" / "odd.lock").mkdir()
    store = RunStore(root)
    for name in ("not-a-run", "wrong-json", "stray.txt"):
        assert any(f"runs/{name}" in w for w in store.warnings), (name, store.warnings)
    assert [(r.run_id, r.name) for r in store.list_runs()] == [(run_id, "real")]
    assert len(store.load(run_id).history) == 2
    assert (root / "notes.txt").read_text() == "mine" and (root / "backup" / "old.bin").exists()
    assert (root / "runs" / "not-a-run" / "picture.png").exists()  # skipped, never deleted
    runs_table(store.list_runs())


# ----------------------------------------------------------------------------------------------------------------
# 10. Row operations


def test_rename_and_tags_persist_in_the_row_and_run_json(tmp_path, tiny_config):
    root = tmp_path / "store"
    store = RunStore(root)
    run_id = store.save(_train(tiny_config, epochs=2), "Playground", "before")
    store.rename(run_id, "  after  ")
    store.set_tags(run_id, ["a", " b ", "", "a", "c"])
    assert store.get(run_id).name == "after" and store.get(run_id).tags == ("a", "b", "c")
    info = json.loads((root / "runs" / run_id / "run.json").read_text())
    assert info["row"]["name"] == "after" and info["row"]["tags"] == ["a", "b", "c"]
    close_all()
    store.index_path.unlink()  # rebuilt from run.json alone
    row = RunStore(root).get(run_id)
    assert row.name == "after" and row.tags == ("a", "b", "c") and row.status == "completed"


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_an_empty_name_is_refused(tmp_path, tiny_config, name):
    store = RunStore(tmp_path / "store")
    run_id = store.begin(tiny_config, "Playground", "named")
    with pytest.raises(ValueError, match="cannot be empty"):
        store.rename(run_id, name)
    assert store.get(run_id).name == "named"


def test_rename_of_a_running_run_reaches_its_run_json_when_it_finishes(tmp_path, tiny_config):
    store = RunStore(tmp_path / "store")
    run_id = store.begin(tiny_config, "Playground", "training")
    store.rename(run_id, "renamed while training")
    store.set_tags(run_id, ["live"])
    store.finish(run_id, _train(tiny_config, epochs=2))
    info = json.loads((tmp_path / "store" / "runs" / run_id / "run.json").read_text())
    assert info["row"]["name"] == "renamed while training" and info["row"]["tags"] == ["live"]
    assert store.get(run_id).name == "renamed while training"


def test_delete_removes_the_row_and_the_folder(tmp_path, tiny_config):
    root = tmp_path / "store"
    store = RunStore(root)
    result = _train(tiny_config, epochs=2)
    gone, kept = store.save(result, "Playground", "gone"), store.save(result, "Playground", "kept")
    store.delete([gone])
    assert [r.run_id for r in store.list_runs()] == [kept]
    assert not (root / "runs" / gone).exists() and (root / "runs" / kept).exists()
    with pytest.raises(RunUnavailable):
        store.get(gone)
    close_all()
    assert [r.run_id for r in RunStore(root).list_runs()] == [kept]  # not adopted back


def test_discard_drops_a_begun_run(tmp_path, tiny_config):
    store = RunStore(tmp_path / "store")
    run_id = store.begin(tiny_config, "Playground", "never trained")
    assert store.get(run_id).status == "running" and not store.get(run_id).openable
    store.discard(run_id)
    assert store.list_runs() == []


def test_find_finished_returns_the_newest_completed_run_of_a_config(tmp_path, tiny_config):
    store = RunStore(tmp_path / "store")
    result = _train(tiny_config, epochs=2)
    other = _train(tiny_config, epochs=2, seed=1)
    assert store.find_finished(result.config.key()) is None
    store.save(result, "Playground", "older")
    newer = store.save(result, "Playground", "newer")
    store.save(other, "Playground", "another config")
    cancelled = store.begin(result.config, "Playground", "cancelled")
    store.finish(cancelled, result, status="cancelled")
    diverged = store.begin(result.config, "Playground", "diverged")
    store.finish(diverged, result, status="diverged")
    assert store.get(cancelled).created > store.get(newer).created
    found = store.find_finished(result.config.key())
    assert found is not None and found.run_id == newer and found.name == "newer"
    assert store.find_finished(ExperimentConfig().key()) is None


@pytest.mark.parametrize("status", ["running", "interrupted", "done"])
def test_finish_refuses_a_status_that_is_not_an_end(tmp_path, tiny_config, status):
    store = RunStore(tmp_path / "store")
    result = _train(tiny_config, epochs=2)
    run_id = store.begin(tiny_config, "Playground", "x")
    with pytest.raises(ValueError, match="completed, cancelled or diverged"):
        store.finish(run_id, result, status=status)
    assert store.get(run_id).status == "running"
    assert not (tmp_path / "store" / "runs" / run_id).exists()


def test_finish_of_a_run_never_begun_raises(tmp_path, tiny_config):
    store = RunStore(tmp_path / "store")
    with pytest.raises(RunUnavailable, match="was begun"):
        store.finish("0123456789abcdef", _train(tiny_config, epochs=2))
    assert not any((tmp_path / "store" / "runs").iterdir()) and not any((tmp_path / "store" / "tmp").iterdir())


def test_open_store_keeps_one_store_per_folder(tmp_path):
    a = open_store(tmp_path / "store")
    assert open_store(str(tmp_path / "store" / ".." / "store")) is a
    assert open_store(tmp_path / "other") is not a
    close_all()
    assert open_store(tmp_path / "store") is not a


def test_a_saved_model_loads_in_safe_mode_without_custom_objects(tmp_path, tiny_config):
    """The model file is a plain .keras archive another program can open."""
    store = RunStore(tmp_path / "store")
    result = _train(tiny_config, epochs=2)
    run_id = store.save(result, "Playground", "plain")
    model = keras.saving.load_model(tmp_path / "store" / "runs" / run_id / "model.keras", safe_mode=True,
                                    compile=False)
    x = result.dataset.x_test
    np.testing.assert_allclose(model.predict(x, verbose=0), result.model.predict(x, verbose=0), atol=1e-6)
