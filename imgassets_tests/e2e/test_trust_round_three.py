"""Hostile input, round three: each case as ``imgassets`` processes on copies of the shared datasets,
asserting the exit code, the message a scientist reads (file and reason), what reached the home, and
that the drive is unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from imgassets_tests.conftest import shared_data_dir
from imgassets_tests.e2e.test_commands_real_drive import coco128_folder, run_command
from imgassets_tests.e2e.test_hostile_share import SMOKE, drive_state

SECRET = b"OUTSIDE-THE-ROOT-7f3a"


def _bytes_anywhere(root: Path, needle: bytes) -> list[Path]:
    """Every file under ``root`` (links not followed) that holds ``needle``."""
    return [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()
            and needle in path.read_bytes()]


def _swap_during_label_reading(folder: Path, outside: Path, home: Path, stop: threading.Event) -> list[str]:
    """Once the image index step has written its output, replace ``folder/labels`` by a link to
    ``outside`` until the label table step has written its own (or ``stop``), then put the real
    folder back, its parent's mtime as it was. Returns what happened, for the assertion message."""
    events: list[str] = []
    index_out = home / "storage" / "image_index" / folder.name
    table_out = home / "storage" / "label_table" / folder.name
    labels, parked = folder / "labels", folder.parent.parent / "parked_labels"
    mtime = os.stat(folder).st_mtime_ns
    while not stop.is_set() and not any(index_out.parent.glob(f"{folder.name}*")):
        time.sleep(0.002)
    if stop.is_set():
        return events
    os.rename(labels, parked)
    os.symlink(outside, labels)
    events.append("swapped")
    while not stop.is_set() and not any(table_out.parent.glob(f"{folder.name}*")):
        time.sleep(0.005)
    os.unlink(labels)
    os.rename(parked, labels)
    os.utime(folder, ns=(mtime, mtime))
    events.append("restored")
    return events


@pytest.mark.slow
def test_a_labels_folder_swapped_for_a_link_during_the_run_is_never_read(tmp_path):
    drive, home, outside = tmp_path / "drive", tmp_path / "home", tmp_path / "outside"
    folder = coco128_folder(drive / "ana")
    for label in (folder / "labels").rglob("*.txt"):  # same names, outside the root
        target = outside / label.relative_to(folder / "labels")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(SECRET + b" 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.2 0.2\n")
    before = drive_state(drive)
    stop, events = threading.Event(), []
    swapper = threading.Thread(target=lambda: events.extend(_swap_during_label_reading(folder, outside, home, stop)))
    swapper.start()
    try:
        code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), *SMOKE)
    finally:
        stop.set()
        swapper.join()
    assert events == ["swapped", "restored"], events
    assert SECRET.decode() not in out + err
    assert _bytes_anywhere(home, SECRET) == []
    assert "on its path is a symbolic link" in out, out[-3000:]
    assert code in (0, 1), err[-3000:]
    assert drive_state(drive) == before


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """coco128 as ``ana``, one smoke ``imgassets run`` (a champion, a review, a model record); the
    drive, the home and the run's JSON summary. Tests copy the home before they alter it."""
    tmp = tmp_path_factory.mktemp("trained")
    drive, home = tmp / "drive", tmp / "home"
    coco128_folder(drive / "ana")
    code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), *SMOKE)
    assert code == 0, err[-3000:]
    return drive, home, json.loads(out)


def _copy_home(home: Path, dest: Path) -> Path:
    shutil.copytree(home, dest, symlinks=True)
    return dest


def _flip_hex_digit(path: Path, field: str) -> None:
    """Change the first hex digit of the first string in ``field`` of the JSON record at ``path``
    (0 <-> 1), leaving everything else, the record's seal included, as it was."""
    record = json.loads(path.read_bytes())
    value = record[field][0] if isinstance(record[field], list) else record[field]
    altered = ("1" if value[0] == "0" else "0") + value[1:]
    record[field] = [altered, *record[field][1:]] if isinstance(record[field], list) else altered
    path.chmod(0o644)
    path.write_text(json.dumps(record, indent=1))


@pytest.mark.slow
def test_a_tampered_retraction_stops_the_run_and_names_its_key(trained_home, tmp_path):
    drive, home, summary = trained_home
    home = _copy_home(home, tmp_path / "home")
    image = "ana/images/train2017/000000000009.jpg"
    code, out, err, _ = run_command("retract", image, "--reason", "consent withdrawn", "--home", str(home), "--json")
    assert code == 0, err
    [record_file] = (home / "objects" / "retractions").glob("*.json")
    _flip_hex_digit(record_file, "hashes")
    key = f"retractions/{record_file.name}"
    before = drive_state(drive)
    code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), *SMOKE)
    assert code == 1, err[-3000:]
    assert f"{key}: the record's content does not match its record_sha256" in out, out[-3000:]
    assert json.loads(out)["model"] is None  # nothing trained while a retraction cannot be read
    assert drive_state(drive) == before
    code, out, err, _ = run_command("lineage", image, "--home", str(home))
    assert code == 1 and key in err and "Traceback" not in err, err


@pytest.mark.slow
def test_a_tampered_champion_ref_is_refused_by_every_command(trained_home, tmp_path):
    drive, home, summary = trained_home
    home = _copy_home(home, tmp_path / "home")
    ref = home / "objects" / "refs" / "models" / "champion"
    assert ref.is_file(), sorted(p.name for p in ref.parent.iterdir())
    _flip_hex_digit(ref, "sha256")
    for args in (["models"], ["pull-model", "champion", str(tmp_path / "weights")]):
        code, out, err, _ = run_command(*args, "--home", str(home))
        assert code == 1 and "refs/models/champion: the record's content does not match" in err, (args, err)
        assert "Traceback" not in err
    assert not (tmp_path / "weights").exists()
    code, out, err, _ = run_command("gc", "--dry-run", "--home", str(home))
    assert code == 1 and "refs/models/champion" in err and "nothing deleted" in err, err


def _object_file(home: Path, sha256: str) -> Path:
    return home / "objects" / "objects" / "sha256" / sha256[:2] / sha256


@pytest.mark.slow
def test_a_damaged_stored_object_is_replaced_on_reuse_and_by_pull_verify(trained_home, tmp_path):
    drive, home, _ = trained_home
    home = _copy_home(home, tmp_path / "home")
    image = drive / "ana" / "images" / "train2017" / "000000000009.jpg"
    good = image.read_bytes()
    sha = hashlib.sha256(good).hexdigest()
    stored = _object_file(home, sha)
    if not stored.is_file():
        [stored] = (home / "objects").rglob(sha)

    def damage() -> None:
        stored.chmod(0o644)
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF
        stored.write_bytes(bytes(data))
    damage()
    new_drive = tmp_path / "drive"
    shutil.copytree(drive, new_drive)
    (new_drive / "ben" / "images").mkdir(parents=True)
    shutil.copyfile(image, new_drive / "ben" / "images" / "copy.jpg")  # ana's image, new to ben
    code, out, err, _ = run_command("run", "--json", "--shared-root", str(new_drive), "--home", str(home), *SMOKE)
    assert code == 0, err[-3000:]
    [ben] = [s for s in json.loads(out)["scientists"] if s["name"] == "ben"]
    assert ben["uploaded_objects"] == 1, ben  # the good bytes ben supplied replaced the damaged copy
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha

    dest = tmp_path / "pulled"
    code, out, err, _ = run_command("pull", "latest", str(dest), "--home", str(home))
    assert code == 0, err
    damage()
    code, out, err, _ = run_command("pull", "latest", str(dest), "--home", str(home), "--verify")
    assert code == 0, err
    assert "1 object(s)" in err and f"objects/sha256/{sha[:2]}/{sha}" in err, err
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha


@pytest.mark.slow
def test_a_pull_into_a_drive_this_home_ingested_is_refused_without_the_setting(trained_home, tmp_path):
    drive, home, _ = trained_home
    before = drive_state(drive)
    for args in (["latest", str(drive / "newdir")], ["latest", str(tmp_path / "d"), "--cache", str(drive / "ana" / "c")]):
        code, out, err, _ = run_command("pull", *args, "--home", str(home))
        assert code == 2 and "is inside the shared drive root" in err, (args, err)
    assert drive_state(drive) == before


def _burst_folder(dest: Path, frames: int, own: int) -> None:
    """``own`` books_roboflow images as they are, and ``frames`` more re-saved with one EXIF capture
    time and camera (one burst, as a phone's burst mode writes it), each with its YOLO labels."""
    from PIL import Image

    source = shared_data_dir() / "books_roboflow" / "train"
    (dest / "images").mkdir(parents=True)
    (dest / "labels").mkdir()
    shutil.copy(shared_data_dir() / "books_roboflow" / "data.yaml", dest / "data.yaml")
    for i, image in enumerate(sorted((source / "images").iterdir())[:frames + own]):
        shutil.copy(source / "labels" / f"{image.stem}.txt", dest / "labels" / f"{image.stem}.txt")
        if i >= frames:
            shutil.copy(image, dest / "images" / image.name)
            continue
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Acme", "BurstCam 3"  # Make, Model
        exif.get_ifd(0x8769)[0x9003] = "2026:11:02 10:15:00"  # DateTimeOriginal
        with Image.open(image) as opened:
            opened.convert("RGB").save(dest / "images" / image.name, "JPEG", quality=90, exif=exif.tobytes())


@pytest.mark.slow
def test_one_burst_beside_a_scientists_images_never_empties_the_train_split(tmp_path):
    drive, home = tmp_path / "drive", tmp_path / "home"
    _burst_folder(drive / "ana", frames=200, own=16)
    before = drive_state(drive)
    code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), *SMOKE)
    assert code == 0, (out[-2000:], err[-3000:])
    summary = json.loads(out)
    dataset = summary["dataset"]
    assert dataset["images_train"] >= 200 and dataset["images_val"] >= 2, dataset
    assert summary["model"] is not None
    manifest = home / "objects" / "datasets" / dataset["dataset_id"] / "manifest.parquet"
    import pyarrow.parquet as pq

    rows = pq.read_table(manifest, columns=["group", "split"]).to_pylist()
    burst = max({r["group"] for r in rows}, key=lambda g: sum(r["group"] == g for r in rows))
    assert {r["split"] for r in rows if r["group"] == burst} == {"train"}
    assert sum(r["group"] == burst for r in rows) == 200
    assert drive_state(drive) == before


@pytest.mark.parametrize(("registry", "message"), [
    ("classes: {0: RBC, 1: WBC}\naliases: [a, b]\n", "line 2: aliases: Input should be a valid dictionary"),
    ("classes:\n  0: {name: Platelets, removed: true}\n  1: RBC\n  2: WBC\n  3: Platelets\n",
     "line 5: class 'Platelets' was removed or merged at id 0 and is given id 3 again"),
    ("classes: {0: RBC, 9223372036854775807: WBC}\n", "not a non-negative integer up to 9999"),
])
def test_a_broken_class_registry_stops_the_command_once_before_any_run(tmp_path, registry, message):
    drive, home = tmp_path / "drive", tmp_path / "home"
    shutil.copytree(shared_data_dir() / "bccd_voc", drive / "ana")
    shutil.copytree(shared_data_dir() / "bccd_voc", drive / "ben")
    path = tmp_path / "registry.yaml"
    path.write_text(registry)
    before = drive_state(drive)
    code, out, err, _ = run_command("run", "--shared-root", str(drive), "--home", str(home), *SMOKE, timeout=120,
                                    env_extra={"IMGASSETS_CLASS_REGISTRY": str(path)})
    assert code == 2, err[-2000:]
    assert err.strip().count("\n") == 0 and str(path) in err and message in err, err
    assert not (home / "objects").exists()  # nothing ran, nothing stored
    assert drive_state(drive) == before


def test_a_registry_that_is_a_fifo_never_hangs_the_command(tmp_path):
    drive = tmp_path / "drive"
    shutil.copytree(shared_data_dir() / "bccd_voc", drive / "ana")
    fifo = tmp_path / "registry.yaml"
    os.mkfifo(fifo)
    code, out, err, _ = run_command("run", "--shared-root", str(drive), "--home", str(tmp_path / "home"), *SMOKE,
                                    timeout=60, env_extra={"IMGASSETS_CLASS_REGISTRY": str(fifo)})
    assert code == 2 and "not a regular file" in err, err


@pytest.mark.slow
@pytest.mark.parametrize("delay", [1.0, 2.5])
def test_sigterm_ends_the_whole_command_not_only_the_scientist_in_progress(tmp_path, delay):
    """SIGTERM ``delay`` seconds after s2 starts: into s2's run, or (later) into its last moments, when
    Dagster's own handler has stopped looking and forgets it: either way no later run starts."""
    import signal
    import subprocess
    import sys

    from imgassets_tests.conftest import command_env, small_books

    drive, home = tmp_path / "drive", tmp_path / "home"
    for name in ("s1", "s2", "s3", "s4"):
        small_books(drive / name, count=70)  # above the index's pool threshold: a pool is running
    proc = subprocess.Popen([sys.executable, "-m", "imgassets.cli", "run", "--json", "--shared-root", str(drive),
                             "--home", str(home), *SMOKE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=command_env(), start_new_session=True)
    try:
        for line in proc.stderr:
            if line.startswith("imgassets: scientist s2:"):
                time.sleep(delay)
                break
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert took < 20, f"SIGTERM took {took:.0f} s to end the command"
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    summary = json.loads(out)
    names = [s["name"] for s in summary["scientists"]]
    assert names in (["s1"], ["s1", "s2"], ["s1", "s2", "s3"]), names  # the one in progress, at most, after s2
    assert summary["model"] is None and "interrupted (SIGTERM or Ctrl-C)" in summary["training_skipped"]
    assert "s4" in summary["training_skipped"] and not (home / "objects" / "snapshots" / "s4").exists()
    assert not (home / "objects" / "datasets").exists()


@pytest.mark.slow
def test_odd_label_studio_exports_are_findings_at_their_file_and_the_others_train(tmp_path):
    """``"annotations": 5`` and ``true`` and an image reference that is not a URL (ana): findings at
    their files, ana's snapshot and training go on; 100,000 nested ``[`` (ben): a finding at the file
    that blocks ben as any unreadable label file does, never a crash."""
    drive, home = tmp_path / "drive", tmp_path / "home"
    folder = coco128_folder(drive / "ana")
    exports = folder / "exports"
    exports.mkdir()
    box = {"type": "rectanglelabels", "original_width": 640, "original_height": 480,
           "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["person"]}}
    (exports / "five.json").write_text(json.dumps([{"data": {"image": "/data/upload/1/x.jpg"}, "annotations": 5}]))
    (exports / "true.json").write_text(json.dumps([{"data": {"image": "/data/upload/1/x.jpg"}, "annotations": True}]))
    (exports / "ipv6.json").write_text(json.dumps([{"data": {"image": "http://[::1/not_on_the_drive.jpg"},
                                                    "annotations": [{"result": [box]}]}]))
    shutil.copytree(shared_data_dir() / "bccd_voc", drive / "ben")
    (drive / "ben" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    before = drive_state(drive)
    code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), *SMOKE)
    summary = json.loads(out)
    ana, ben = summary["scientists"]
    assert ana["success"] and ana["snapshot_id"] and not ana["blocked_by"], (ana, err[-3000:])
    findings = {(c["partition"], f["file"]): f["reason"] for c in summary["checks"] for f in c["findings"]}
    assert "not_on_the_drive.jpg" in findings[("ana", "exports/ipv6.json")]
    assert "label_schema" in ben["blocked_by"] and "nested deeper" in findings[("ben", "deep.json")], ben
    assert summary["model"] is not None and code == 1, err[-3000:]
    assert "Traceback" not in err
    assert drive_state(drive) == before


@pytest.mark.slow
def test_messages_and_exit_codes_without_tracebacks(trained_home, tmp_path):
    import subprocess
    import sys

    from imgassets_tests.conftest import command_env

    _, home, summary = trained_home
    code, out, err, _ = run_command("gc", "--dry-run", "--home", str(home), env_extra={"IMGASSETS_GC_KEEP_DATASETS": "0"})
    assert code == 2 and err.startswith("imgassets: error: --keep-datasets (IMGASSETS_GC_KEEP_DATASETS) must be 1"), err
    for args in (["retract", "--snapshot", "../x", "--reason", "r"], ["diff", "--scientist", "../x", "latest"],
                 ["retract", "0" * 64, "--reason", "r"]):
        code, out, err, _ = run_command(*args, "--home", str(home))
        assert code == 2 and "Traceback" not in err and err.count("\n") == 1, (args, err)
    assert not (home / "objects" / "retractions").exists()
    reader = subprocess.Popen([sys.executable, "-m", "imgassets.cli", "gc", "--dry-run", "--json", "--home", str(home)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env())
    reader.stdout.close()  # `| head` that read nothing
    assert reader.wait(timeout=120) == 141 and b"Traceback" not in reader.stderr.read()
