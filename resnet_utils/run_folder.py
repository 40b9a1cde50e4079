"""The run folder's own rules: one owner at a time, atomic files, a resumable state, and recovery.

A run folder (see :mod:`resnet_utils.training`) is written by one process at a time, holds only
whole files, and can always be resumed from whatever intact state it holds:

* **Lock.** ``.lock`` is locked with ``fcntl.flock`` for as long as a process trains in the folder.
  The operating system drops the lock when that process ends, however it ends (``kill -9``
  included), so there is never a stale lock to delete. A second process is refused at once with
  :class:`RunFolderBusy`, naming the folder and the process that holds it.
* **Atomic files.** Every file is written under a temporary name and moved into place with
  ``os.replace``; a full disk or a kill leaves the previous version, never half a file, and no
  ``.partial`` file behind when Python can still clean up.
* **One resumable state.** ``resume.keras`` holds the weights, the optimizer (its step counter
  drives the learning-rate schedule) and, inside the same archive, :data:`RESUME_ENTRY`: the
  number of finished epochs, the log rows of those epochs, the best epoch so far, the run's
  identity and its data fingerprint. It is one file, replaced in one step after each epoch, so
  weights, optimizer and epoch counter can never disagree. ``last.keras`` is a copy of it and
  ``resume.bkp.keras`` the previous epoch's, so a damaged file has a fallback.
* **Recovery.** :func:`find_resume_state` picks the newest intact state; :func:`reconcile_log`
  repairs ``log.csv`` from it where they agree and stops with the choices where they disagree;
  :func:`repair_best` rebuilds ``best.json``/``best.keras``. Each repair prints one line.

For tests, :func:`crash_point` kills the process at named moments when ``RESNET_TEST_KILL_AT``
asks for it (``"state-written:2"``: after writing epoch 2's state, before moving it into place).
"""

from __future__ import annotations

import csv
import errno
import fcntl
import json
import math
import os
import shlex
import shutil
import signal
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from resnet_utils.runs import RUN_FILE_NAMES, DamagedFile, read_log

CONFIG = "config.json"
LOG = "log.csv"
BEST = "best.keras"
BEST_RECORD = "best.json"
LAST = "last.keras"
RESUME = "resume.keras"
RESUME_BACKUP = "resume.bkp.keras"
PREDICTIONS = "predictions.npz"
METRICS = "metrics.json"
MEAN = "mean.npy"
LOCK = ".lock"
#: The entry inside a state archive (``resume.keras``, ``last.keras``) that makes it resumable.
RESUME_ENTRY = "resnet_utils_resume.json"
#: What an earlier version of this package used for resuming (Keras's BackupAndRestore).
LEGACY_BACKUP = "backup"
#: Every file a run folder holds: the readers' list (``runs.RUN_FILE_NAMES``), one list for both.
RUN_FILES = RUN_FILE_NAMES
assert set(RUN_FILES) == {CONFIG, LOG, BEST, LAST, BEST_RECORD, PREDICTIONS, METRICS, MEAN, RESUME, RESUME_BACKUP}
#: Test hook: ``"<crash point>:<epochs done>"`` makes :func:`crash_point` SIGKILL the process there.
KILL_ENV = "RESNET_TEST_KILL_AT"
#: The entries every Keras 3 ``.keras`` model archive holds.
MODEL_ENTRIES = ("metadata.json", "config.json", "model.weights.h5")


class RunFolderError(RuntimeError):
    """The output folder cannot be used as it is; the message says why and what the choices are."""


class RunFolderBusy(RunFolderError):
    """Another process is training in this folder right now."""


# --- writing files ----------------------------------------------------------------------------------


def crash_point(name: str, epochs_done: int) -> None:
    """Test hook: SIGKILL this process here if ``RESNET_TEST_KILL_AT`` is ``"<name>:<epochs_done>"``."""
    if os.environ.get(KILL_ENV) == f"{name}:{epochs_done}":
        os.kill(os.getpid(), signal.SIGKILL)


def partial_path(path: Path) -> Path:
    """The temporary name ``path`` is written under (same suffix, so Keras and numpy accept it)."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_error(path: Path, error: OSError) -> RunFolderError:
    """A one-line error for a write that failed (full disk, quota, permissions)."""
    reason = os.strerror(error.errno) if error.errno else str(error)
    hint = "Free some space" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "Fix that"
    return RunFolderError(
        f"Could not write {path}: {reason}. {hint} (or choose another --out), then rerun the same command; "
        "it resumes after the last finished epoch."
    )


def write_atomic(path: Path, write: Callable[[Path], None], before_replace: Callable[[], None] | None = None) -> None:
    """Write ``path`` by calling ``write(temporary)`` and moving the result into place in one step.

    The file is flushed to disk before it replaces the old one. On any failure the temporary file
    is removed; an ``OSError`` (a full disk) becomes a one-line :class:`RunFolderError`.
    ``before_replace`` runs between writing and replacing (a test's kill point).
    """
    temporary = partial_path(path)
    try:
        # A link (or anything) left at the temporary name is removed, not written through, and the
        # file is created afresh and exclusively: no write follows a link out of the folder.
        # os.replace then replaces whatever is at ``path`` (a link included) without following it.
        temporary.unlink(missing_ok=True)
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
        write(temporary)
        _fsync(temporary)
        if before_replace:
            before_replace()
        os.replace(temporary, path)
    except BaseException as error:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise disk_error(path, error) from error
        raise


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    text = json.dumps(payload, indent=2, default=str) + "\n"
    write_atomic(path, lambda p: p.write_text(text))


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``; ``None`` if it is missing, empty, damaged or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def copy_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically."""
    write_atomic(target, lambda p: shutil.copyfile(source, p))


def write_log(path: Path, rows: list[dict]) -> None:
    """Write ``log.csv`` atomically: one row per epoch, columns as Keras's CSVLogger orders them
    (``epoch``, then the rest sorted)."""

    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="") as f:
            if rows:
                columns = ["epoch", *sorted(k for k in rows[0] if k != "epoch")]
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: (int(row[k]) if k == "epoch" else float(row[k])) for k in columns})

    write_atomic(path, write)


# --- the lock ---------------------------------------------------------------------------------------


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the ``with`` block; raise :class:`RunFolderBusy` if another process holds it.

    ``fcntl.flock`` locks belong to the open file, so the lock ends with the process that holds it,
    however it ends. The file keeps the holder's PID for the message of the one refused.
    """
    path = Path(out) / LOCK
    if path.is_symlink() or (path.exists() and not path.is_file()):
        what = "a symbolic link" if path.is_symlink() else "a folder" if path.is_dir() else "not a regular file"
        remove = "rm -r" if path.is_dir() and not path.is_symlink() else "rm"
        raise RunFolderError(
            f"{path} is {what}; the lock must be a plain file, and the trainer never writes through a link. "
            f"Remove it ({remove} {shlex.quote(str(path))}) and rerun the same command."
        )
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        raise disk_error(path, error) from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderBusy(
            f"{out} is in use: process {holder} is training in it. Wait for it to finish (or stop it), "
            "or use another --out."
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


# --- starting: writable, restart, identity, finished --------------------------------------------------


def make_writable(out: Path) -> None:
    """Create ``out`` and check that files can be written in it, before anything slow happens."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)  # a new name, created exclusively
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise RunFolderError(
            f"Cannot write to the output folder {str(out)!r} ({error}). Choose a folder you can write to with --out."
        ) from error


def links_at_run_names(out: Path) -> list[Path]:
    """The run files in ``out`` that are symbolic links. (A link at a temporary name needs no
    refusal: :func:`write_atomic` removes it, unfollowed, before it writes.)"""
    return [out / name for name in (*RUN_FILES, LEGACY_BACKUP) if (out / name).is_symlink()]


def refuse_links(out: Path) -> None:
    """Refuse a folder that holds a symbolic link at one of the run's own names: the package never
    makes one, and it neither writes nor reads a run's files through a link."""
    links = links_at_run_names(out)
    if links:
        listed = ", ".join(f"{p.name} -> {os.readlink(p)}" for p in links)
        quoted = " ".join(shlex.quote(str(p)) for p in links)
        raise RunFolderError(
            f"{out} holds symbolic link(s) at the run's own names ({listed}); a run folder holds only its own files, "
            f"and the trainer neither writes nor reads through a link. Remove them (rm {quoted}) or use another --out."
        )


def run_evidence(out: Path) -> str | None:
    """What proves that ``out`` holds a run of this package: a ``config.json`` with a run identity,
    a resume state holding its record, or a ``metrics.json`` written by this trainer. ``None`` if
    nothing does."""
    config = read_json(out / CONFIG) if not (out / CONFIG).is_symlink() else None
    if config is not None and isinstance(config.get("identity"), dict):
        return "config.json"
    for name in (RESUME, LAST, RESUME_BACKUP):
        if not (out / name).is_symlink() and read_state_record(out / name) is not None:
            return name
    metrics = read_json(out / METRICS) if not (out / METRICS).is_symlink() else None
    if metrics is not None and str(metrics.get("command", "")).startswith("python -m resnet_utils.train"):
        return "metrics.json"
    return None


def present_run_files(out: Path) -> list[str]:
    """The names of :data:`RUN_FILES` present in ``out`` (links included)."""
    return [name for name in RUN_FILES if (out / name).exists() or (out / name).is_symlink()]


def delete_run(out: Path) -> list[str]:
    """Delete the run's files (``--restart``): exactly :data:`RUN_FILES`, their temporary files and
    the legacy ``backup/`` folder; nothing else in ``out``. Returns the names deleted.

    Only in a folder that :func:`run_evidence` proves is a run of this package: a folder holding
    files of these names but no such proof (another program's ``config.json``) is refused with
    :class:`RunFolderError` and nothing is deleted. A link is removed as a link; what it points to
    is never touched."""
    present = present_run_files(out)
    if present and run_evidence(out) is None:
        raise RunFolderError(
            f"{out} holds {', '.join(present)} but nothing proves it is a run of this package (no config.json with a run "
            "identity, no resume state, no metrics.json of this trainer), so --restart deleted nothing. Use another --out."
        )
    deleted = []
    for name in RUN_FILES:
        for path in (out / name, partial_path(out / name)):
            if path.is_symlink() or path.is_file():
                path.unlink()
                deleted.append(path.name)
    backup = out / LEGACY_BACKUP
    if backup.is_symlink():
        backup.unlink()
        deleted.append(LEGACY_BACKUP)
    elif backup.is_dir():
        shutil.rmtree(backup)
        deleted.append(LEGACY_BACKUP + "/")
    return deleted


def remove_leftovers(out: Path) -> list[str]:
    """Remove what a finished run no longer needs (resume states, temporary files, legacy
    ``backup/``) after a kill between writing ``metrics.json`` and cleaning up."""
    removed = []
    for name in (RESUME, RESUME_BACKUP):
        if (out / name).exists() or (out / name).is_symlink():
            (out / name).unlink()
            removed.append(name)
    for name in RUN_FILES:
        if partial_path(out / name).exists() or partial_path(out / name).is_symlink():
            partial_path(out / name).unlink()
            removed.append(partial_path(out / name).name)
    if (out / LEGACY_BACKUP).is_dir() and not (out / LEGACY_BACKUP).is_symlink():
        shutil.rmtree(out / LEGACY_BACKUP)
        removed.append(LEGACY_BACKUP + "/")
    return removed


def read_state_record(path: Path) -> dict | None:
    """The resume record inside a state archive; ``None`` if the file is missing, damaged or has none."""
    try:
        with zipfile.ZipFile(path) as archive:
            record = json.loads(archive.read(RESUME_ENTRY))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, EOFError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("epochs_done"), int) or not isinstance(record.get("history"), list):
        return None
    return record


def recorded_identity(out: Path, notes: list[str]) -> tuple[dict | None, str | None]:
    """The identity (and data fingerprint) of the run held in ``out``: from ``config.json``, or, if
    that is damaged, from a resume state. ``(None, None)`` for a new folder."""
    config_path = out / CONFIG
    config = read_json(config_path)
    if config is not None and isinstance(config.get("identity"), dict):
        return config["identity"], config.get("data_fingerprint")
    for name in (RESUME, LAST, RESUME_BACKUP):
        record = read_state_record(out / name)
        if record and isinstance(record.get("identity"), dict):
            what = "damaged" if config_path.exists() else "missing"
            notes.append(f"config.json was {what}; took the run's identity from {name} (config.json is rewritten).")
            return record["identity"], record.get("data_fingerprint")
    others = [name for name in present_run_files(out) if name not in (CONFIG, MEAN)]
    if config is not None:  # JSON, but no run identity: another program's file
        raise RunFolderError(
            f"{config_path} is not a run of this package (it has no run identity), so {out} may belong to another "
            "program; nothing in it was changed. Use another --out."
        )
    if config_path.exists():
        if run_evidence(out):
            raise RunFolderError(
                f"{config_path} is damaged and no resume state says which run {out} holds. Choices: use another "
                "--out, or pass --restart to delete that run and start over."
            )
        raise RunFolderError(
            f"{config_path} is damaged (not a JSON object) and nothing else in {out} says it is a run of this package; "
            f"nothing was changed. Use another --out, or, if it is this package's, delete it (rm {shlex.quote(str(config_path))}) "
            "and rerun the same command."
        )
    if others:
        if run_evidence(out):
            raise RunFolderError(f"{out} holds training files but no config.json; use another --out, or pass --restart to delete them.")
        raise RunFolderError(
            f"{out} holds {', '.join(others)} but no config.json, and nothing says they are a run of this package; "
            "nothing was changed. Use another --out."
        )
    return None, None


def check_identity(out: Path, recorded: dict | None, asked: dict) -> None:
    """Refuse a folder whose run differs from the one asked for in any identity field."""
    if recorded is None:
        return
    differences = {k: (recorded.get(k), v) for k, v in asked.items() if recorded.get(k) != v}
    if differences:
        listed = "; ".join(f"{k}: folder has {old!r}, asked {new!r}" for k, (old, new) in differences.items())
        raise RunFolderError(
            f"{out} holds a different run ({listed}). Use another --out, or pass --restart "
            "(restart=True) to delete that run and start over."
        )


def check_data_fingerprint(out: Path, recorded: str | None, actual: str, description: str) -> None:
    """Refuse to continue a run on other data than it started on."""
    if recorded and recorded != actual:
        raise RunFolderError(
            f"{out} was trained on other data (fingerprint {recorded}) than what was loaded now ({description}; "
            f"fingerprint {actual}). Resume it with the data it started on (the --data/--data-dir of "
            f"{out / CONFIG}), or use another --out, or pass --restart to start over on this data."
        )


# --- resuming ---------------------------------------------------------------------------------------


@dataclass
class ResumeState:
    """What a rerun starts from: epochs finished, their log rows, the best epoch so far, and the
    lines saying what was recovered."""

    epochs_done: int = 0
    history: list[dict] = field(default_factory=list)
    best: dict | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)


def state_record(epochs_done: int, history: list[dict], best: dict | None, identity: dict, fingerprint: str) -> dict:
    """The resume record stored inside a state archive."""
    return {"epochs_done": epochs_done, "history": history, "best": best, "identity": identity, "data_fingerprint": fingerprint}


def save_state(out: Path, model, record: dict) -> None:
    """Write the resumable state of ``model`` after ``record["epochs_done"]`` epochs in one step:
    ``resume.keras`` with weights, optimizer and the record inside; the previous one becomes
    ``resume.bkp.keras``; then ``last.keras`` becomes a copy of it."""
    path = out / RESUME
    epochs_done = record["epochs_done"]

    def write(temporary: Path) -> None:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(RESUME_ENTRY, json.dumps(record, default=float))

    if path.exists():  # keep the previous state as a fallback (a hard link: no copy, no gap)
        backup_partial = partial_path(out / RESUME_BACKUP)
        backup_partial.unlink(missing_ok=True)
        try:
            os.link(path, backup_partial)
            os.replace(backup_partial, out / RESUME_BACKUP)
        except OSError:
            backup_partial.unlink(missing_ok=True)  # a file system without hard links: no fallback copy
    write_atomic(path, write, before_replace=lambda: crash_point("state-written", epochs_done))
    crash_point("state-saved", epochs_done)


def find_resume_state(out: Path, load: Callable[[Path], None], epochs_asked: int) -> ResumeState:
    """The newest intact resumable state in ``out``, loaded into the model by ``load(path)``.

    Candidates are ``resume.keras``, ``last.keras`` (a copy of it) and ``resume.bkp.keras`` (one
    epoch older); damaged ones are skipped with a note. An empty state (epoch 0) if there is none.
    """
    state = ResumeState()
    candidates = []
    for name in (RESUME, LAST, RESUME_BACKUP):
        path = out / name
        if path.is_symlink():
            state.notes.append(f"{name} is a symbolic link (to {os.readlink(path)}); not using it: a run folder holds only its own files.")
            continue
        if not path.exists():
            continue
        record = read_state_record(path)
        if record is None:
            if name != LAST:  # a last.keras from an older version has no record; not damage
                state.notes.append(f"{name} is damaged (unreadable); not using it.")
            continue
        if record["epochs_done"] > epochs_asked or len(record["history"]) != record["epochs_done"]:
            state.notes.append(f"{name} does not fit this run ({record['epochs_done']} epochs of {epochs_asked}); not using it.")
            continue
        candidates.append((record["epochs_done"], name, record))
    for epochs_done, name, record in sorted(candidates, key=lambda c: -c[0]):
        try:
            load(out / name)
        except Exception as error:  # a damaged archive fails inside h5py/zipfile with many types
            state.notes.append(f"{name} is damaged ({type(error).__name__}); not using it.")
            continue
        if name != RESUME and (out / RESUME).exists():
            state.notes.append(f"Resuming from {name} (after epoch {epochs_done}).")
        state.epochs_done, state.history, state.best, state.source = epochs_done, record["history"], record.get("best"), name
        return state
    return state


def _differing_fields(a: dict, b: dict) -> list[str]:
    """The fields (but the epoch's wall time) in which two log rows differ."""
    shared = sorted((set(a) & set(b)) - {"epoch_time_s"})
    return [k for k in shared if not (math.isclose(float(a[k]), float(b[k]), rel_tol=1e-6, abs_tol=1e-9)
                                      or (math.isnan(float(a[k])) and math.isnan(float(b[k]))))]


def _rows_agree(a: dict, b: dict) -> bool:
    return not _differing_fields(a, b)


def reconcile_log(out: Path, state: ResumeState) -> list[dict]:
    """Make ``log.csv`` hold exactly the epochs of ``state``, repairing it where the records agree.

    * rows missing from the log (a kill between the state and the log, a log cut short) are
      restored from the state, with a note;
    * rows beyond the state (the state fell back to an older copy) are dropped with a note:
      those epochs are trained again;
    * a half-written last row is dropped with a note;
    * a log that disagrees with the state about a finished epoch, or finished epochs with no
      resumable state at all, stop with :class:`RunFolderError` naming the choices.
    """
    path = out / LOG
    try:
        logged = read_log(path)
    except DamagedFile as error:
        if state.source is None:
            raise RunFolderError(
                f"{error}, and {out} holds no intact resumable state to rebuild it from. Choices: delete log.csv "
                f"(rm {shlex.quote(str(path))}) to train from epoch 0, or pass --restart to start over."
            ) from None
        state.notes.append(f"log.csv was damaged ({error.reason}); rebuilt it from {state.source}.")
        write_log(path, state.history)
        return state.history
    epochs = [int(r.get("epoch", -1)) for r in logged]
    if epochs != list(range(len(logged))):
        raise RunFolderError(
            f"{path} does not number its epochs 0, 1, 2, ... (it has {epochs[:8]}...). Choices: delete log.csv to "
            "rebuild it from the resume state, or pass --restart to start over."
        )
    if state.source is None:
        if logged:
            raise RunFolderError(
                f"{path} records {len(logged)} finished epoch(s), but {out} holds no intact resumable state "
                f"({RESUME}, {LAST} or {RESUME_BACKUP}), so training cannot continue after epoch {len(logged)}. "
                f"Choices: put back {RESUME} or {LAST}, or pass --restart to train again from epoch 0 (deletes those epochs)."
            )
        return []
    for i, (row, kept) in enumerate(zip(logged, state.history)):
        if not _rows_agree(row, kept):
            differing = "; ".join(f"{k}: log {float(row[k])!r}, state {float(kept[k])!r}" for k in _differing_fields(row, kept))
            raise RunFolderError(
                f"{path} and {state.source} disagree about epoch {i + 1} ({differing}). "
                f"Choices: delete log.csv to rebuild it from {state.source}, or pass --restart to start over."
            )
    if len(logged) < state.epochs_done:
        state.notes.append(f"log.csv lacked epoch(s) {len(logged) + 1}..{state.epochs_done}; restored them from {state.source}.")
    elif len(logged) > state.epochs_done:
        state.notes.append(
            f"log.csv has {len(logged)} epochs but the newest intact state is after epoch {state.epochs_done}: "
            f"epoch(s) {state.epochs_done + 1}..{len(logged)} will be trained again and their rows replaced."
        )
    elif path.exists() and _has_partial_row(path, len(logged)):
        state.notes.append("log.csv ended inside a row (a kill while writing it); dropped that piece.")
    if len(logged) != state.epochs_done or _has_partial_row(path, len(logged)):
        write_log(path, state.history)
    return state.history


def _has_partial_row(path: Path, complete_rows: int) -> bool:
    """True if ``log.csv`` holds more than its header and ``complete_rows`` whole rows."""
    try:
        text = path.read_text()
    except OSError:
        return False
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(text) and (not text.endswith("\n") or len(lines) > complete_rows + 1)


def best_from_history(history: list[dict]) -> dict | None:
    """The best epoch by test accuracy (the first if tied), as ``best.json`` records it."""
    if not history:
        return None
    index = max(range(len(history)), key=lambda i: (history[i]["val_accuracy"], -i))
    return {"epoch": index + 1, "val_accuracy": float(history[index]["val_accuracy"])}


def archive_is_whole(path: Path) -> bool:
    """True if ``path`` is a zip archive whose entries all pass their CRC check."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def archive_is_model(path: Path) -> bool:
    """True if ``path`` is a plain file (not a link) and a whole Keras model archive (its entries
    :data:`MODEL_ENTRIES` present and passing their CRC check)."""
    if path.is_symlink() or not archive_is_whole(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return set(MODEL_ENTRIES) <= set(archive.namelist())


def _best_record_fits(record: dict | None, history: list[dict]) -> bool:
    """True if ``record`` names a kept epoch and that epoch's test accuracy."""
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int) or not 1 <= record["epoch"] <= len(history):
        return False
    value = record.get("val_accuracy")
    return isinstance(value, (int, float)) and math.isclose(value, history[record["epoch"] - 1]["val_accuracy"], rel_tol=1e-6)


def repair_best(out: Path, state: ResumeState) -> dict | None:
    """Make ``best.json`` and ``best.keras`` match the epochs in ``state``.

    ``best.json`` is rebuilt from the log rows if damaged or naming an epoch not kept. A missing
    or damaged ``best.keras`` is copied from the state if the best epoch is the state's own;
    otherwise the best epoch's weights are gone, and ``best.keras`` becomes the newest model (said
    in a note, and recorded in ``best.json``).
    """
    if state.source is None:
        return None
    record = read_json(out / BEST_RECORD)
    if not _best_record_fits(record, state.history):
        record = best_from_history(state.history)
        if not (out / BEST_RECORD).exists():
            state.notes.append(f"best.json was missing; rebuilt it from log.csv (best epoch {record['epoch']}).")
        elif read_json(out / BEST_RECORD) is None:
            state.notes.append(f"best.json was damaged; rebuilt it from log.csv (best epoch {record['epoch']}).")
        else:
            state.notes.append(f"best.json did not match log.csv (or named an epoch trained again); rebuilt it (best epoch {record['epoch']}).")
        write_json(out / BEST_RECORD, record)
    if not archive_is_model(out / BEST):
        what = "missing" if not (out / BEST).exists() else "damaged"
        copy_atomic(out / state.source, out / BEST)
        if record["epoch"] == state.epochs_done:
            state.notes.append(f"best.keras was {what}; restored it from {state.source} (the best epoch, {record['epoch']}, is the newest).")
        else:
            lost = record["epoch"]
            record = {"epoch": state.epochs_done, "val_accuracy": float(state.history[-1]["val_accuracy"]), "replaces_lost_epoch": lost}
            write_json(out / BEST_RECORD, record)
            state.notes.append(
                f"best.keras (epoch {lost}) was {what} and cannot be rebuilt; it now holds epoch {state.epochs_done}'s model "
                "and later epochs replace it when they do better."
            )
    state.best = record
    return record


def repair_last(out: Path, state: ResumeState) -> None:
    """Make ``last.keras`` a whole copy of the state resumed from."""
    if state.source is None or state.source == LAST:
        return
    last = read_state_record(out / LAST)
    whole = last is not None and archive_is_model(out / LAST)
    if whole and last["epochs_done"] == state.epochs_done:
        return
    if not whole:
        what = "missing" if not (out / LAST).exists() else "damaged"
        state.notes.append(f"last.keras was {what}; restored it from {state.source}.")
    copy_atomic(out / state.source, out / LAST)


# --- a finished run, checked ------------------------------------------------------------------------


def finished_damage(out: Path, epochs_completed: int | None) -> list[str]:
    """The files of a finished run that are damaged (or missing where a finished run has them):
    ``config.json`` without a run identity, ``log.csv`` unreadable or not one row per epoch,
    ``best.keras``/``last.keras`` not a whole model (a missing ``last.keras`` is not damage, nor a
    missing ``best.keras`` without ``last.keras``: committed runs leave out the large models),
    ``best.json``, ``predictions.npz`` or ``mean.npy`` unreadable."""
    import numpy as np

    damaged = []
    config = read_json(out / CONFIG)
    if config is None or not isinstance(config.get("identity"), dict):
        damaged.append(CONFIG)
    try:
        log = read_log(out / LOG)
        if [int(r.get("epoch", -1)) for r in log] != list(range(len(log))) or (epochs_completed is not None and len(log) != epochs_completed):
            damaged.append(LOG)
    except DamagedFile:
        damaged.append(LOG)
        log = []
    # Committed runs leave out the models too large for the repository: a missing model is damage
    # only where the other one is there to rebuild it from.
    if ((out / BEST).exists() or (out / LAST).exists()) and not archive_is_model(out / BEST):
        damaged.append(BEST)
    if (out / LAST).exists() and not archive_is_model(out / LAST):
        damaged.append(LAST)
    record = read_json(out / BEST_RECORD)
    if LOG not in damaged and (out / BEST_RECORD).exists() and not _best_record_fits(record, log):
        damaged.append(BEST_RECORD)
    try:
        with np.load(out / PREDICTIONS, allow_pickle=False) as arrays:
            probabilities, labels = arrays["probabilities"], arrays["labels"]
            if probabilities.ndim != 2 or labels.shape != (len(probabilities),):
                damaged.append(PREDICTIONS)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        damaged.append(PREDICTIONS)
    try:
        mean = np.load(out / MEAN, allow_pickle=False)
        if mean.shape != (32, 32, 3):
            damaged.append(MEAN)
    except (OSError, ValueError, EOFError):
        damaged.append(MEAN)
    return damaged


def check_finished_repairable(out: Path, damaged: list[str], epochs_completed: int | None) -> None:
    """Refuse with one line when a finished run's damaged files cannot be rebuilt: that needs a
    ``last.keras`` holding the resume record of the final epoch."""
    record = read_state_record(out / LAST) if archive_is_model(out / LAST) else None
    if record is None or (epochs_completed is not None and record["epochs_done"] != epochs_completed):
        raise RunFolderError(
            f"{out} holds a finished run whose {', '.join(damaged)} {'is' if len(damaged) == 1 else 'are'} damaged or missing, "
            f"and no last.keras holding the final epoch's resume record to rebuild from. Choices: put back "
            f"{', '.join(damaged)}, or pass --restart to train the run again."
        )
