"""Materialize the whole graph once, in a persistent Dagster instance, and summarise it.

Used by ``imgassets run``. One ``scientist_job`` run per scientist folder (each a partition), then
one ``training_job`` run, as the automation in the UI does it: a scientist whose blocking checks
fail (or whose run fails) is left out, the dataset takes their last good snapshot when they have
one, and the others train; the summary names who was left out, by which check and files, and the
exit code is still 1. Training is skipped only when no scientist's run succeeded. Runs are recorded in the Dagster instance at ``DAGSTER_HOME``, so
they appear afterwards in ``dagster dev``.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import dagster as dg

from imgassets.core.training.train import TrainingSettings
from imgassets.defs.metadata import Key
from imgassets.defs.partitions import scientists as scientists_partitions
from imgassets.defs.run_health import OWNER_TAG, owner_tag, reap_dead_runs

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""Run config that keeps Dagster's console log (and its stack traces) off the command's stderr: the
command prints the findings and errors it summarises itself (:func:`materialize_all`'s progress);
the full log is in the UI, and ``--verbose`` prints it (:data:`VERBOSE_LOGS`)."""
VERBOSE_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
SHOWN_FINDINGS = 10
"""Findings of a failed blocking check printed on stderr per scientist; the summary and the UI list all."""


@dataclass
class CheckOutcome:
    """One asset check evaluation: name, asset, partition, passed, severity, blocking, findings."""

    name: str
    asset: str
    partition: str | None
    passed: bool
    severity: str
    blocking: bool
    count: int
    findings: list[dict]


@dataclass
class ScientistOutcome:
    """What one scientist's run produced."""

    name: str
    run_id: str
    success: bool
    images_found: int = 0
    images_valid: int = 0
    rejected: list[dict] = field(default_factory=list)
    boxes: int = 0
    unlabelled: int = 0
    """Valid images nobody has labelled yet (:mod:`imgassets.core.labels.unlabelled`): snapshotted, not trained on."""
    snapshot_id: str | None = None
    uploaded_objects: int = 0
    blocked_by: list[str] = field(default_factory=list)
    error: str | None = None
    left_out: list[dict] = field(default_factory=list)
    """Images left out of the snapshot (``file``, ``line`` 0, ``reason``): their file vanished or
    changed after it was indexed; the next run indexes them again."""


@dataclass
class RunSummary:
    """The JSON summary of ``imgassets run`` (documented in the README)."""

    shared_root: str
    home: str
    scientists: list[ScientistOutcome]
    checks: list[CheckOutcome]
    dataset: dict | None = None
    model: dict | None = None
    evaluation: dict | None = None
    training_skipped: str | None = None
    error: str | None = None
    labeling: list[dict] = field(default_factory=list)
    """Per scientist with unlabelled images, their labeling queue after training: ``{"scientist",
    "unlabelled", "queued", "set_aside", "strategy", "champion_model_id", "predicted_now", "scores_reused",
    "error"}`` (images the champion predicted in this run, and those whose scores it had already)."""
    left_out: list[dict] = field(default_factory=list)
    """Scientists whose run was blocked or failed in this invocation: ``{"scientist", "reason",
    "snapshot_used"}``, the last good snapshot the dataset took instead (null: none, the scientist
    is not in the dataset)."""
    skipped_folders: list[dict] = field(default_factory=list)
    """Top-level folders that are not scientists: ``{"folder", "reason"}`` (symbolic links, names
    that are not UTF-8 or too long)."""

    @property
    def blocked(self) -> bool:
        return any(c.blocking and not c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when everything materialized and all blocking checks passed, else 1."""
        complete = all(s.success for s in self.scientists) and self.model is not None
        labelled = not any(q.get("error") for q in self.labeling)
        return 0 if complete and labelled and not self.blocked and not self.error else 1

    def as_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.exit_code == 0
        data["exit_code"] = self.exit_code
        return data


def _metadata_values(metadata: dict) -> dict:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def _materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    out = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        out[materialization.asset_key.to_user_string()] = _metadata_values(materialization.metadata)
    return out


def _checks(result: dg.ExecuteInProcessResult) -> list[CheckOutcome]:
    outcomes = []
    for evaluation in result.get_asset_check_evaluations():
        meta = _metadata_values(evaluation.metadata)
        outcomes.append(CheckOutcome(
            name=evaluation.check_name, asset=evaluation.asset_key.to_user_string(), partition=evaluation.partition,
            passed=evaluation.passed, severity=evaluation.severity.value, blocking=bool(evaluation.blocking),
            count=int(meta[Key.COUNT]), findings=list(meta[Key.FINDINGS]),
        ))
    return outcomes


def _step_error(result: dg.ExecuteInProcessResult) -> str | None:
    """``<step>: <message>`` of the run's first failed step (a failed blocking check excepted), the
    message of the error's root cause: Dagster wraps what a step raised ("Error occurred while
    executing op ..."), and the cause is what names the file, endpoint or bucket."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            if "DagsterAssetCheckFailedError" in (error.cls_name or ""):
                continue
            if error.cls_name == "DagsterExecutionInterruptedError":
                return f"{event.step_key}: {INTERRUPTED}; nothing half-written was kept"
            while error.cause is not None and (error.cls_name or "").startswith("Dagster") \
                    and error.cls_name not in ("DagsterFailure", "Failure"):
                error = error.cause
            message = error.message.strip()
            head, _, rest = message.partition(": ")
            if error.cls_name and head.rpartition(".")[2] == error.cls_name and rest:
                message = rest  # "module.ErrorClass: text" -> "text"
            return f"{event.step_key}: {ANSI_ESCAPE.sub('', message)}"
    return None


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
"""A terminal colour or cursor code (ECMA-48 CSI), as Ultralytics puts in its messages: never in a summary."""


def run_tags() -> dict[str, str]:
    """Tags of a run ``imgassets run`` executes: who launched it, and which process runs it
    (:mod:`imgassets.defs.run_health`)."""
    return {"imgassets/launched_by": "imgassets run", OWNER_TAG: owner_tag()}


def _read(metadata: dict | None, key: str, absent: object) -> object:
    """``metadata[key]`` of an asset that materialized (a missing key raises ``KeyError``: the
    writer renamed it), ``absent`` when the asset did not materialize in the run."""
    return absent if metadata is None else metadata[key]


def run_scientist(defs: dg.Definitions, instance: dg.DagsterInstance, scientist: str,
                  logs: dict = QUIET_LOGS) -> tuple[ScientistOutcome, list[CheckOutcome]]:
    """Run ``scientist_job`` for one partition and read its outcome from the events. ``logs``: the
    run config of Dagster's console logger (:data:`QUIET_LOGS` or :data:`VERBOSE_LOGS`)."""
    result = defs.resolve_job_def("scientist_job").execute_in_process(
        partition_key=scientist, instance=instance, raise_on_error=False, run_config=logs,
        tags=run_tags(),
    )
    meta = _materializations(result)
    checks = _checks(result)
    index, labels, snapshot = meta.get("image_index"), meta.get("label_table"), meta.get("image_snapshot")
    decode = next((c for c in checks if c.name == "images_decode"), None)
    outcome = ScientistOutcome(
        name=scientist, run_id=result.run_id, success=result.success,
        images_found=_read(index, Key.IMAGES, 0), images_valid=_read(index, Key.IMAGES_VALID, 0),
        rejected=decode.findings if decode else [], boxes=_read(labels, Key.BOXES, 0),
        unlabelled=_read(labels, Key.UNLABELLED, 0),
        snapshot_id=_read(snapshot, Key.SNAPSHOT_ID, None), uploaded_objects=_read(snapshot, Key.UPLOADED_OBJECTS, 0),
        blocked_by=[c.name for c in checks if c.blocking and not c.passed],
        left_out=list(_read(snapshot, Key.LEFT_OUT, [])),
        error=None if result.success else _step_error(result),
    )
    return outcome, checks


def run_training(defs: dg.Definitions, instance: dg.DagsterInstance, training: TrainingSettings,
                 val_fraction: float | None = None, logs: dict = QUIET_LOGS, benchmark_fraction: float | None = None,
                 resplit: bool = False) -> tuple[dict | None, dict | None, dict | None, str | None, list[CheckOutcome]]:
    """Run ``training_job``; return (dataset, model and evaluation metadata, error, checks).
    ``logs`` as for :func:`run_scientist`; ``resplit``: split this dataset without the previous
    version's splits (the recovery from a degenerate split, docs/architecture.md)."""
    ops = {"yolo_model": {"config": {**asdict(training), "device": training.device or ""}}}
    fractions = {"val_fraction": val_fraction, "benchmark_fraction": benchmark_fraction, "resplit": resplit or None}
    if any(v is not None for v in fractions.values()):
        ops["training_dataset"] = {"config": {k: v for k, v in fractions.items() if v is not None}}
    result = defs.resolve_job_def("training_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config={**logs, "ops": ops},
        tags=run_tags(),
    )
    meta = _materializations(result)
    dataset, model = meta.get("training_dataset"), meta.get("yolo_model")
    if dataset is not None:
        dataset.pop("annotation_heatmap", None)  # a picture for the UI, not for the summary
        dataset["run_id"] = result.run_id
    if model is not None:
        model = {"model_key": model[Key.MODEL_KEY], "dataset_id": model[Key.DATASET_ID], "run_id": result.run_id,
                 "metrics": {k: model[k] for k in Key.METRICS},
                 "epochs": model[Key.EPOCHS], "training_seconds": model[Key.TRAINING_SECONDS],
                 "device": model[Key.DEVICE]}
    evaluation = meta.get("model_evaluation")
    if evaluation is not None:
        evaluation = {
            **{k: evaluation[k] for k in (Key.EVALUATION_KEY, Key.MISSED_BOXES, Key.SPURIOUS_BOXES, Key.BENCHMARK_KEY,
                                          Key.PROMOTED, Key.DECISION)},
            "benchmark_images": evaluation.get("benchmark_images", 0),
            "label_review_findings": evaluation.get("label_review_findings", 0),
            "benchmark": {m: evaluation[f"benchmark/{m}"] for m in Key.METRICS} if "benchmark/mAP50" in evaluation else None,
            "champion": {m: evaluation[f"champion/{m}"] for m in Key.METRICS} if "champion/mAP50" in evaluation else None,
            "benchmark_imgsz": evaluation.get("benchmark/imgsz"), "champion_imgsz": evaluation.get("champion/imgsz"),
            "champion_after": meta["champion_model"]["model_id"] if "champion_model" in meta else None,
            "reference_mAP50-95": evaluation.get("reference/mAP50-95"),
            "error_types": {k.removeprefix("error_types/"): v for k, v in evaluation.items()
                            if k.startswith("error_types/")},
            "slices_regressed": [s for s in str(evaluation.get("slices_regressed", "none")).split(", ") if s != "none"],
            "operating_point": evaluation.get("operating_point/confidence"),
            "mlflow_run": meta.get("yolo_model", {}).get("mlflow_run"),
        }
    checks = _checks(result)
    blocked = [c.name for c in checks if c.blocking and not c.passed]
    error = None if result.success else (_step_error(result) or f"training_job stopped by {', '.join(blocked) or 'a failure'}")
    return dataset, model, evaluation, error, checks


def run_labeling(defs: dg.Definitions, instance: dg.DagsterInstance, scientist: str, logs: dict = QUIET_LOGS) -> dict:
    """Run ``labeling_job`` for one scientist; return what the summary shows of the queue (or its error)."""
    result = defs.resolve_job_def("labeling_job").execute_in_process(
        partition_key=scientist, instance=instance, raise_on_error=False, run_config=logs, tags=run_tags())
    queue = _materializations(result).get("labeling_queue")
    if queue is None:
        return {"scientist": scientist, "error": _step_error(result) or "labeling_job failed"}
    return {"scientist": scientist, "unlabelled": queue[Key.UNLABELLED], "queued": queue["queued"],
            "set_aside": queue["set_aside"], "strategy": queue["strategy"],
            "champion_model_id": queue["champion_model_id"], "predicted_now": queue["predicted_now"],
            "scores_reused": queue["scores_reused"], "error": None}


INTERRUPTED = "interrupted (SIGTERM or Ctrl-C)"


def _interrupted(summary: RunSummary, not_run: list[str]) -> RunSummary:
    """``summary`` of a command stopped by SIGTERM or Ctrl-C: the scientists ``not_run`` and training
    are not started (the summary says so; exit 1)."""
    summary.error = summary.error or f"{INTERRUPTED}: the command stopped"
    summary.training_skipped = (f"{INTERRUPTED}: not run" + (f", nor the scientists {', '.join(not_run)}"
                                                             if not_run else ""))
    return summary


def _instance_failure(exc: Exception, home: str) -> str:
    """What to tell a user whose Dagster instance failed mid-command: the error's first line and the
    free space of the home (a full disk is the usual cause, and SQLite reports it as an I/O error)."""
    import shutil

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    try:
        free = f"; {shutil.disk_usage(home).free / 2**20:.1f} MiB free under {home}"
    except OSError:
        free = ""
    return f"the Dagster instance failed: {type(exc).__name__}: {first}{free}"


def materialize_all(defs: dg.Definitions, instance: dg.DagsterInstance, shared_root: str, home: str,
                    scientist_names: list[str], training: TrainingSettings,
                    progress: Callable[[str], None] = lambda message: None,
                    val_fraction: float | None = None, verbose: bool = False,
                    benchmark_fraction: float | None = None, resplit: bool = False) -> RunSummary:
    """Register every scientist as a partition, run each scientist's job, then training (see the
    module docstring for when training is skipped). ``val_fraction``: the dataset's share of
    images in the val split, ``benchmark_fraction`` in the benchmark split (``None``: the launchpad
    defaults). ``progress`` also gets what stopped
    a run: each failed blocking check with its first :data:`SHOWN_FINDINGS` findings (file, line,
    reason), or the failed step's error; ``verbose`` adds Dagster's own log, tracebacks included."""
    logs = VERBOSE_LOGS if verbose else QUIET_LOGS
    for run_id in reap_dead_runs(instance):
        progress(f"run {run_id} was left STARTED by a process that is gone: marked failed, its slots freed")
    known = set(instance.get_dynamic_partitions(scientists_partitions.name))
    missing = [s for s in scientist_names if s not in known]
    if missing:
        instance.add_dynamic_partitions(scientists_partitions.name, missing)
    summary = RunSummary(shared_root=shared_root, home=home, scientists=[], checks=[])
    with StopSignals() as stop:
        try:
            return _materialize_all(defs, instance, home, scientist_names, training, progress, val_fraction,
                                    benchmark_fraction, resplit, logs, summary, stop)
        except KeyboardInterrupt:  # SIGTERM or Ctrl-C between runs
            done = {s.name for s in summary.scientists}
            return _interrupted(summary, [n for n in scientist_names if n not in done])


class StopSignals:
    """SIGTERM and Ctrl-C (SIGINT) for the whole command, noticed however they are handled when they
    arrive. SIGTERM is made Ctrl-C: between runs it raises ``KeyboardInterrupt``; inside a run
    Dagster's own handler ends the run interrupted, except when the signal comes after the run's
    last step looked for it, which Dagster then forgets. So every signal is also written to a pipe
    (``signal.set_wakeup_fd``, below any Python handler) that :meth:`requested` reads after each run.
    Only in the main thread (signals are delivered there); elsewhere it notices nothing."""

    def __enter__(self) -> StopSignals:
        self.seen, self._pipe, self._previous = False, None, -1
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))
            read, write = os.pipe()
            os.set_blocking(read, False)
            os.set_blocking(write, False)
            self._pipe = (read, write)
            self._previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        return self

    def requested(self) -> bool:
        """Whether SIGTERM or SIGINT arrived since the command started."""
        if self._pipe and not self.seen:
            try:
                received = os.read(self._pipe[0], 4096)
            except BlockingIOError:
                received = b""
            self.seen = any(number in (signal.SIGTERM, signal.SIGINT) for number in received)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        if self._pipe:
            signal.set_wakeup_fd(self._previous)
            for descriptor in self._pipe:
                os.close(descriptor)


def _materialize_all(defs: dg.Definitions, instance: dg.DagsterInstance, home: str, scientist_names: list[str],
                     training: TrainingSettings, progress: Callable[[str], None], val_fraction: float | None,
                     benchmark_fraction: float | None, resplit: bool, logs: dict, summary: RunSummary,
                     stop: StopSignals) -> RunSummary:
    """:func:`materialize_all`'s runs, filling ``summary``; none starts once ``stop`` saw a signal."""
    for position, name in enumerate(scientist_names):
        progress(f"scientist {name}: index, labels, checks, snapshot")
        try:
            outcome, checks = run_scientist(defs, instance, name, logs)
        except Exception as exc:  # the instance itself failed (a full disk under DAGSTER_HOME...): say so, stop
            summary.error = f"scientist {name}: {_instance_failure(exc, home)}"
            return summary
        summary.scientists.append(outcome)
        summary.checks.extend(checks)
        _report_failures(progress, f"scientist {name}", checks, None if outcome.success else outcome.error)
        if stop.requested() or (outcome.error and INTERRUPTED in outcome.error):
            return _interrupted(summary, scientist_names[position + 1:])
    for s in summary.scientists:
        if s.blocked_by:
            summary.left_out.append({"scientist": s.name, "reason": "blocked by " + ", ".join(s.blocked_by),
                                     "snapshot_used": None})
        elif not s.success:
            summary.left_out.append({"scientist": s.name, "reason": f"run failed: {s.error or 'see the Dagster UI'}",
                                     "snapshot_used": None})
    if not any(s.success for s in summary.scientists):
        summary.training_skipped = "no scientist's run succeeded: " + "; ".join(
            f"{o['scientist']} {o['reason']}" for o in summary.left_out)
        return summary
    progress(f"training: dataset from the latest good snapshots, YOLO {training.model}, "
             f"{training.epochs} epoch(s) at imgsz {training.imgsz}")
    try:
        summary.dataset, summary.model, summary.evaluation, summary.error, dataset_checks = run_training(
            defs, instance, training, val_fraction, logs, benchmark_fraction, resplit)
    except Exception as exc:  # as above
        summary.error = f"training: {_instance_failure(exc, home)}"
        return summary
    summary.checks.extend(dataset_checks)
    _report_failures(progress, "training", dataset_checks, summary.error)
    used = summary.dataset[Key.SNAPSHOTS] if summary.dataset else {}
    for entry in summary.left_out:
        entry["snapshot_used"] = used.get(entry["scientist"])
    for outcome in summary.scientists:
        if outcome.success and outcome.unlabelled and not stop.requested():
            progress(f"labeling queue of {outcome.name}: {outcome.unlabelled} unlabelled image(s) ranked")
            summary.labeling.append(run_labeling(defs, instance, outcome.name, logs))
    return summary


def _report_failures(progress: Callable[[str], None], who: str, checks: list[CheckOutcome], error: str | None) -> None:
    """Tell ``progress`` what stopped ``who``'s run: each failed blocking check with its first
    :data:`SHOWN_FINDINGS` findings as ``file:line: reason``, then a failed step's error."""
    for check in checks:
        if check.blocking and not check.passed:
            progress(f"{who} blocked by {check.name} ({check.count} finding(s)):")
            for finding in check.findings[:SHOWN_FINDINGS]:
                where = f"{finding['file']}:{finding['line']}" if finding.get("line") else finding["file"]
                progress(f"    {where}: {finding['reason']}")
            if check.count > SHOWN_FINDINGS:
                progress(f"    ... and {check.count - SHOWN_FINDINGS} more (the summary and the UI list them all)")
    if error and not any(c.blocking and not c.passed for c in checks):
        progress(f"{who} failed: {error}")
