"""Training runs in MLflow, the champion in MLflow's model registry (optional: ``IMGASSETS_MLFLOW_TRACKING_URI``).

With a tracking server set (and the ``mlflow`` extra installed: ``pip install imgassets[mlflow]``),
each training is an MLflow run in the experiment ``imgassets``: the training settings as parameters,
each epoch's losses and validation metrics as they happen (step = epoch), the dataset version as
the run's input dataset (name ``imgassets-<dataset id>``, digest = the dataset id, a content hash;
source = its manifest key), Ultralytics' plots and ``results.csv`` as artifacts, and tags linking
back to Dagster (``dagster.run_id``, ``imgassets.model_id``, ``imgassets.dataset_id``). The weights
are logged as an artifact and registered as a version of the registered model ``imgassets-<task>``
(one name per task: ``imgassets-detect``), tagged with the dataset and model ids. The evaluation
adds the benchmark scores, COCO's reference mAP and the error types as metrics and the slice table
as an artifact. The alias ``champion`` follows ``refs/models/champion``: set on every promotion
(:func:`set_champion_alias`), and nowhere else.

A tracking server that is down, or an ``mlflow`` that is not installed, never fails training: one
warning names the URI (:class:`TrackingUnavailable` is logged, not raised), and the run goes on
untracked. The client is MLflow's ``MlflowClient`` (no global active run). Ultralytics' own MLflow
callback is switched off in training (:func:`without_ultralytics_mlflow`), so a run is never
logged twice or into a local ``mlruns`` folder.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

EXPERIMENT = "imgassets"
CHAMPION_ALIAS = "champion"
TASK = "detect"

log = logging.getLogger("imgassets.tracking")


def registered_model_name(task: str = TASK) -> str:
    """The registered model of a task's weights (``imgassets-detect``)."""
    return f"imgassets-{task}"


def run_url(uri: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI's page of a run."""
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def _reachable(uri: str) -> str | None:
    """Why the tracking server at ``uri`` cannot be used (None: it answers its health check)."""
    if not uri.startswith(("http://", "https://")):
        return None  # a local file or database store: MLflow opens it itself
    import requests

    try:
        answer = requests.get(f"{uri.rstrip('/')}/health", timeout=5)
    except requests.RequestException as exc:
        return f"{type(exc).__name__}"
    return None if answer.ok else f"HTTP {answer.status_code}"


class TrainingTracker:
    """One training's MLflow run (module docstring). Every method is a no-op once tracking is off
    (no URI, no ``mlflow``, the server down: :attr:`active` is False), after one warning through
    ``warn`` (default: the module's logger) naming the URI and why."""

    def __init__(self, uri: str | None, warn: Callable[[str], None] | None = None) -> None:
        self.uri = uri
        self.warn = warn or log.warning
        self.client = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        if not uri:
            return
        try:
            from mlflow import MlflowClient
        except ImportError:
            self._off("the mlflow package is not installed (pip install 'imgassets[mlflow]')")
            return
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")  # a server that went away fails in seconds
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        problem = _reachable(uri)
        if problem:
            self._off(f"the server does not answer ({problem})")
            return
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    @property
    def active(self) -> bool:
        """Whether this training is being tracked."""
        return self.client is not None

    @property
    def url(self) -> str | None:
        """The run's page in the MLflow UI (None: not tracked)."""
        return run_url(self.uri, self.experiment_id, self.run_id) if self.active and self.run_id else None

    def _off(self, why: str) -> None:
        self.warn(f"MLflow tracking at {self.uri} is off for this run: {why}; training goes on untracked")
        self.client = None

    def _try(self, what: str, call: Callable[[], object]) -> object:
        if not self.active:
            return None
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints links on stdout: a command's --json is there
                return call()
        except Exception as exc:  # a tracking failure never fails the training
            self._off(f"{what} failed ({type(exc).__name__}: {str(exc)[:200]})")
            return None

    def start(self, run_name: str, params: dict, tags: dict[str, str], dataset_id: str, manifest_key: str) -> None:
        """Create the run with its parameters, tags and input dataset."""
        def create() -> None:
            from mlflow.entities import Dataset, DatasetInput, InputTag, Param

            found = self.client.get_experiment_by_name(EXPERIMENT)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(EXPERIMENT)
            run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
            self.run_id = run.info.run_id
            self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())])
            dataset = Dataset(f"imgassets-{dataset_id}", dataset_id, "imgassets", manifest_key)
            self.client.log_inputs(self.run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])

        self._try("creating the run", create)

    def log_metrics(self, values: dict[str, float], step: int = 0) -> None:
        """Log ``values`` (name -> number) at ``step`` (the epoch; 0 for one-off scores)."""
        def log_all() -> None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self.client.log_batch(self.run_id, metrics=[Metric(_metric_name(k), float(v), now, step)
                                                        for k, v in values.items() if v == v])

        if self.run_id:
            self._try("logging metrics", log_all)

    def log_artifacts(self, files: dict[str, Path | None], folder: str | None = None) -> None:
        """Upload each existing file of ``files`` (name -> path) under ``folder`` of the run's artifacts."""
        def upload() -> None:
            for path in files.values():
                if path is not None and Path(path).is_file():
                    self.client.log_artifact(self.run_id, str(path), folder)

        if self.run_id:
            self._try("uploading artifacts", upload)

    def log_text(self, text: str, name: str) -> None:
        """Store ``text`` as the run's artifact ``name``."""
        if self.run_id:
            self._try(f"uploading {name}", lambda: self.client.log_text(self.run_id, text, name))

    def register(self, weights: Path, task: str, tags: dict[str, str]) -> str | None:
        """Upload ``weights`` and register them as a version of :func:`registered_model_name`;
        returns the version (None: not tracked)."""
        def create() -> str:
            from mlflow.exceptions import MlflowException

            with tempfile.TemporaryDirectory() as tmp:
                named = Path(tmp) / "best.pt"
                named.symlink_to(Path(weights).resolve())
                self.client.log_artifact(self.run_id, str(named), "weights")
            name = registered_model_name(task)
            try:
                self.client.create_registered_model(name, description="imgassets' trained YOLO weights")
            except MlflowException as exc:
                if "RESOURCE_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                    raise
            version = self.client.create_model_version(name, f"runs:/{self.run_id}/weights", self.run_id, tags=tags,
                                                       run_link=self.url)
            return str(version.version)

        return self._try("registering the model", create) if self.run_id else None

    def finish(self, status: str = "FINISHED") -> None:
        """End the run with ``status`` (``FINISHED`` or ``FAILED``)."""
        if self.run_id:
            self._try("ending the run", lambda: self.client.set_terminated(self.run_id, status))

    def record(self) -> dict | None:
        """What the model's record keeps of its run (``uri``, ``experiment_id``, ``run_id``,
        ``url``; ``version`` is added by the caller), or None when not tracked."""
        if not (self.active and self.run_id):
            return None
        return {"uri": self.uri, "experiment_id": self.experiment_id, "run_id": self.run_id, "url": self.url}


def _metric_name(name: str) -> str:
    """An MLflow metric name (letters, digits, ``_-./ `` only)."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


def reopen(tracked: dict | None, warn: Callable[[str], None] | None = None) -> TrainingTracker | None:
    """The tracker of a model's recorded run (``tracked``: :meth:`TrainingTracker.record` with
    ``version``), to log the evaluation into it; None when the model was not tracked."""
    if not tracked:
        return None
    tracker = TrainingTracker(tracked["uri"], warn)
    tracker.run_id, tracker.experiment_id = tracked["run_id"], tracked["experiment_id"]
    return tracker if tracker.active else None


def log_evaluation(tracker: TrainingTracker | None, judged) -> None:
    """Log a model's evaluation (``judged``: a
    :class:`~imgassets.core.training.challenger.ChallengerEvaluation`) into its run: the benchmark
    scores, the champion's, COCO's reference mAP, the error types and the operating point as
    metrics, the slice table as the artifact ``slices.csv``. Nothing without a tracker."""
    if tracker is None:
        return
    values: dict[str, float] = {}
    if judged.challenger:
        values.update({f"benchmark/{m}": v for m, v in judged.challenger.overall.items()})
    if judged.champion:
        values.update({f"champion/{m}": v for m, v in judged.champion.overall.items()})
    if judged.operating_point:
        values["operating_point/confidence"] = judged.operating_point["confidence"]
        values.update({f"operating_point/benchmark_{k}": v for k, v in judged.operating_point.get("benchmark", {}).items()
                       if k in ("precision", "recall")})
    if judged.analysis:
        values.update({f"reference/{k}": v for k, v in judged.analysis.reference["challenger"].items()})
        values.update({f"error_types/{k}": v for k, v in judged.analysis.error_types["challenger"]["dAP"].items()})
        tracker.log_text(judged.analysis.slices.to_csv(index=False), "slices.csv")
    tracker.log_metrics(values)


def set_champion_alias(tracked: dict | None, task: str = TASK, warn: Callable[[str], None] | None = None) -> bool:
    """Point the ``champion`` alias of the task's registered model at the promoted model's version
    (``tracked``: its record's ``mlflow``). False (one warning) when it could not."""
    tracker = reopen(tracked, warn)
    if tracker is None or not tracked.get("version"):
        return False
    done = tracker._try("moving the champion alias", lambda: tracker.client.set_registered_model_alias(
        registered_model_name(task), CHAMPION_ALIAS, str(tracked["version"])))
    return tracker.active and done is None


def without_ultralytics_mlflow(trainer) -> None:
    """An ``on_pretrain_routine_start`` callback: removes Ultralytics' own MLflow callbacks from
    ``trainer`` (they would log every run a second time, to ``MLFLOW_TRACKING_URI`` or a local
    ``mlruns`` folder, whenever ``mlflow`` is installed)."""
    for event, functions in trainer.callbacks.items():
        trainer.callbacks[event] = [f for f in functions
                                    if getattr(f, "__module__", "") != "ultralytics.utils.callbacks.mlflow"]
