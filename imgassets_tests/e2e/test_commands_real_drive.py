"""Every command as a user runs it, on a real drive above every threshold in the code (all 128
images of coco128 in one folder: the index's process pool, the upload and pull batches), as a
process with a timeout: its exit code, its result, and that it ends within seconds of printing it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from imgassets.core.images.index import PARALLEL_THRESHOLD
from imgassets_tests.conftest import command_env, end_server_group, shared_data_dir, start_server

pytestmark = pytest.mark.slow

EXIT_GRACE_SECONDS = 15
"""The longest a command may take to end after its last line of output."""


def run_command(*args: str, timeout: float = 600, env_extra: dict | None = None) -> tuple[int, str, str, float]:
    """``imgassets ARGS`` as a process: (exit code, stdout, stderr, seconds from its last output
    line to its exit). Fails the test when it does not end within ``timeout``."""
    env = command_env()
    env.update(env_extra or {})
    proc = subprocess.Popen([sys.executable, "-m", "imgassets.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + timeout
    out_lines, last_output = [], time.monotonic()
    try:
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=1):
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                break
            out_lines.append(line)
            last_output = time.monotonic()
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"imgassets {' '.join(args)} did not end within {timeout} s; output: {''.join(out_lines)[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    ended = time.monotonic()
    return proc.returncode, "".join(out_lines), proc.stderr.read(), ended - last_output


def coco128_folder(dest: Path) -> Path:
    """All of coco128 (128 images, YOLO labels, data.yaml) as one scientist's folder."""
    shutil.copytree(shared_data_dir() / "coco128", dest)
    return dest


def test_run_pull_lineage_models_end_on_coco128(tmp_path):
    drive, home = tmp_path / "drive", tmp_path / "home"
    folder = coco128_folder(drive / "ana")
    assert len(list(folder.rglob("*.jpg"))) >= 2 * PARALLEL_THRESHOLD
    flags = {"--epochs": "2", "--imgsz": "96", "--batch": "8", "--patience": "7", "--device": "cpu",
             "--model": "yolov8n.yaml", "--val-fraction": "0.5", "--workers": "1"}
    code, out, err, linger = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home),
                                         *[part for flag in flags.items() for part in flag])
    assert code == 0, err[-3000:]
    assert linger < EXIT_GRACE_SECONDS, f"run ended {linger:.0f} s after printing its summary"
    summary = json.loads(out)
    assert summary["ok"] and summary["scientists"][0]["images_valid"] == 128
    dataset = summary["dataset"]
    share = dataset["images_val"] / (dataset["images_train"] + dataset["images_val"] + dataset["images_benchmark"])
    assert 0.4 <= share <= 0.6, f"--val-fraction 0.5 gave a val share of {share:.2f}"
    args_yaml = home / "objects" / summary["model"]["model_key"].replace("best.pt", "args.yaml")
    recorded = yaml.safe_load(args_yaml.read_text())  # what Ultralytics trained with: every flag reached it
    assert {k: recorded[k] for k in ("epochs", "imgsz", "batch", "patience", "device", "model", "workers")} == {
        "epochs": 2, "imgsz": 96, "batch": 8, "patience": 7, "device": "cpu", "model": "yolov8n.yaml", "workers": 1}
    assert summary["model"]["epochs"] == 2 and summary["model"]["device"] == "cpu"

    code, out, err, linger = run_command("pull", "latest", str(tmp_path / "pulled"), "--home", str(home), "--json")
    assert code == 0, err[-3000:]
    assert linger < EXIT_GRACE_SECONDS
    pulled = json.loads(out)
    assert pulled["images"] == 128 and len(list((tmp_path / "pulled" / "images").rglob("*.jpg"))) == 128

    image = folder / "images" / "train2017" / "000000000009.jpg"
    code, out, err, linger = run_command("lineage", str(image), "--home", str(home), "--json")
    assert code == 0, err
    assert linger < EXIT_GRACE_SECONDS
    [found] = json.loads(out)
    assert [d["dataset_id"] for d in found["datasets"]] == [dataset["dataset_id"]]

    code, out, err, linger = run_command("models", "--home", str(home), "--json")
    assert code == 0, err
    assert linger < EXIT_GRACE_SECONDS
    assert [m["model_id"] for m in json.loads(out)] == [summary["model"]["run_id"]]


def test_a_run_killed_during_training_holds_nothing_back(tmp_path):
    """kill -9 while the model trains: the next ``imgassets run`` marks the dead run failed, frees
    its ``yolo_training`` slot and trains, instead of waiting for the slot forever."""
    import fcntl
    import signal

    import dagster as dg

    home = tmp_path / "home"
    env = command_env()
    proc = subprocess.Popen([sys.executable, "-m", "imgassets.cli", "run", "--home", str(home), "--epochs", "500",
                             "--patience", "500"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 300
        claimed = None
        while time.monotonic() < deadline and proc.poll() is None and not claimed:
            time.sleep(1)
            lock_path = home / "dagster" / ".imgassets-instance.lock"
            if (home / "dagster" / "history").is_dir() and lock_path.exists():
                with open(lock_path) as lock:  # as another command would: never while the run creates the instance
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
                        claimed = instance.event_log_storage.get_concurrency_info("yolo_training").claimed_slots
        assert claimed, "training never claimed its slot"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    [slot] = claimed
    code, out, err, linger = run_command("run", "--json", "--home", str(home), timeout=300)
    assert code == 0, err[-3000:]
    assert f"run {slot.run_id} was left STARTED by a process that is gone: marked failed" in err
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert instance.get_run_by_id(slot.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("yolo_training").claimed_slots == []
    assert json.loads(out)["model"] is not None


def test_two_runs_started_at_once_on_a_fresh_home_both_finish(tmp_path):
    drive, home = tmp_path / "drive", tmp_path / "home"
    coco128_folder(drive / "ana")
    env = command_env()
    argv = [sys.executable, "-m", "imgassets.cli", "run", "--json", "--shared-root", str(drive), "--home", str(home)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert json.loads(out)["ok"] and "IntegrityError" not in err


def test_a_home_that_fills_up_mid_run_still_gives_the_json_summary(tmp_path):
    """The home on a 24 MiB disk, coco128 (20 MB) to ingest and stage: the disk fills during the run
    (objects, staging, the instance's SQLite). The command still ends with exit 1 and its JSON,
    whose error says how much space is left, and no temporary file stays behind."""
    disk = tmp_path / "disk"
    disk.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        coco128_folder(tmp_path / "drive" / "ana")
        code, out, err, linger = run_command("run", "--json", "--shared-root", str(tmp_path / "drive"),
                                             "--home", str(disk / "home"))
        assert code == 1, err[-2000:]
        assert linger < EXIT_GRACE_SECONDS
        summary = json.loads(out)
        errors = [summary["error"], *(s["error"] for s in summary["scientists"])]
        assert any(e and ("MiB free under" in e or "No space left on device" in e) for e in errors), errors
        assert [p for p in disk.rglob("*") if p.name.startswith(".tmp-")] == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_run_skips_folders_no_partition_can_hold_and_runs_the_others(tmp_path):
    drive, home = tmp_path / "drive", tmp_path / "home"
    coco128_folder(drive / "ana")
    os.mkdir(os.fsencode(drive) + b"/r\xe9sultats")  # Latin-1 name: not UTF-8
    (drive / ("x" * 230)).mkdir()
    (tmp_path / "private").mkdir()
    os.symlink(tmp_path / "private", drive / "mallory")
    code, out, err, linger = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home))
    assert code == 0, err[-3000:]
    summary = json.loads(out)
    assert [s["name"] for s in summary["scientists"]] == ["ana"] and summary["model"] is not None
    skipped = {s["folder"]: s["reason"] for s in summary["skipped_folders"]}
    assert set(skipped) == {"mallory", "r\\xe9sultats", "x" * 230}
    assert "not followed" in skipped["mallory"] and "not valid UTF-8" in skipped["r\\xe9sultats"]


def test_ui_starts_serves_and_ends_with_every_process_on_sigterm(tmp_path):
    import signal

    import requests

    from imgassets_tests.conftest import free_port

    drive = tmp_path / "drive"
    (drive / "ana").mkdir(parents=True)
    port = free_port()
    env = command_env()
    env["IMGASSETS_DRIVE_SENSOR"] = "stopped"
    # Started as a non-interactive shell starts a background job, SIGINT ignored: dagster dev maps
    # SIGTERM to SIGINT's handler, so without imgassets resetting it the UI would ignore SIGTERM
    proc = start_server([sys.executable, "-m", "imgassets.cli", "ui", "--port", str(port), "--home",
                         str(tmp_path / "home"), "--shared-root", str(drive)], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline, served = time.monotonic() + 180, False
        while time.monotonic() < deadline and not served and proc.poll() is None:
            try:
                served = requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).ok
            except requests.RequestException:
                time.sleep(1)
        assert served, "the UI never answered"
        proc.send_signal(signal.SIGTERM)
        # dagster dev gives its webserver, then its daemon, 60 s each to stop before it kills them
        # (_SUBPROCESS_WAIT_TIMEOUT in dagster/_cli/dev.py): a daemon still loading the code
        # location on a loaded machine takes that long
        proc.wait(timeout=150)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.5)
        assert not _group_alive(proc.pid), "processes of imgassets ui outlived it"
    finally:
        end_server_group(proc.pid)


def _group_alive(pgid: int) -> bool:
    """True while a process other than a zombie is left in process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
