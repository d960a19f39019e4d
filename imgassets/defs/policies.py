"""Policy settings as Dagster resources, built from :mod:`imgassets.settings` (the environment) when
the definitions load, so the UI's resource page shows the values every run uses and the asset
bodies read no environment variable. Each resource hands the core its plain policy object."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from imgassets import settings
from imgassets.core.labeling.build import LabelingPolicy
from imgassets.core.training.benchmark import DEFAULT_MARGIN
from imgassets.core.training.challenger import EvaluationPolicy
from imgassets.core.training.review import ReviewSettings
from imgassets.core.training.slices import SlicePolicy
from imgassets.core.versioning.build import DatasetPolicy
from imgassets.core.versioning.sequences import DEFAULT_BURST_SECONDS, SequenceRules


class DatasetPolicyResource(dg.ConfigurableResource):
    """How ``training_dataset`` builds a version: the departed-folder policy and its grace period
    (``IMGASSETS_DEPARTED_POLICY``: keep, retract or block; ``IMGASSETS_DEPARTED_GRACE_DAYS``), the
    sequence rules that keep a burst or session in one split (``IMGASSETS_BURST_SECONDS``,
    ``IMGASSETS_SESSION_FOLDERS``), the class registry file (``IMGASSETS_CLASS_REGISTRY``; empty:
    class names as written) and the folders declared unlabelled (``IMGASSETS_UNLABELLED_FOLDERS``)."""

    departed_policy: str = "keep"
    departed_grace_days: float = 7.0
    burst_seconds: float = DEFAULT_BURST_SECONDS
    session_folders: str = ""
    class_registry: str = ""
    unlabelled_folders: str = ""

    @classmethod
    def from_settings(cls) -> DatasetPolicyResource:
        """The values of the environment (:mod:`imgassets.settings`)."""
        policy, grace = settings.departed_policy()
        rules = settings.sequence_rules()
        registry = settings.class_registry_path()
        return cls(departed_policy=policy, departed_grace_days=grace, burst_seconds=rules.burst_seconds,
                   session_folders=rules.session_folders or "", class_registry=str(registry) if registry else "",
                   unlabelled_folders=settings.unlabelled_folders() or "")

    def policy(self) -> DatasetPolicy:
        """The core's :class:`~imgassets.core.versioning.build.DatasetPolicy`."""
        return DatasetPolicy(self.departed_policy, self.departed_grace_days,
                             SequenceRules(self.burst_seconds, self.session_folders or None),
                             Path(self.class_registry).expanduser() if self.class_registry else None,
                             self.unlabelled_folders or None)


class EvaluationPolicyResource(dg.ConfigurableResource):
    """How ``model_evaluation`` judges a challenger: the promotion margin (absolute benchmark
    mAP50-95, ``IMGASSETS_CHAMPION_MARGIN``) and the label review's thresholds
    (``IMGASSETS_REVIEW_MIN_CONFIDENCE``, ``IMGASSETS_REVIEW_MIN_MAP50``) and folds
    (``IMGASSETS_REVIEW_FOLDS``: 2 or more also reviews the train split out of sample) and the
    benchmark slices on which a regression blocks promotion (``IMGASSETS_PROTECTED_SLICES``)."""

    champion_margin: float = DEFAULT_MARGIN
    review_min_confidence: float = ReviewSettings.min_confidence
    review_min_benchmark_map50: float = ReviewSettings.min_benchmark_map50
    review_folds: int = 0
    protected_slices: list[str] = []

    @classmethod
    def from_settings(cls) -> EvaluationPolicyResource:
        """The values of the environment (:mod:`imgassets.settings`)."""
        review = settings.review_settings()
        return cls(champion_margin=settings.champion_margin(), review_min_confidence=review["min_confidence"],
                   review_min_benchmark_map50=review["min_benchmark_map50"], review_folds=settings.review_folds(),
                   protected_slices=list(settings.protected_slices()))

    def policy(self) -> EvaluationPolicy:
        """The core's :class:`~imgassets.core.training.challenger.EvaluationPolicy`."""
        return EvaluationPolicy(self.champion_margin, ReviewSettings(min_confidence=self.review_min_confidence,
                                                                     min_benchmark_map50=self.review_min_benchmark_map50),
                                self.review_folds, SlicePolicy(protected=tuple(self.protected_slices)))


class TrainingPresetResource(dg.ConfigurableResource):
    """The training preset every ``yolo_model`` run starts from (``IMGASSETS_TRAINING_PRESET``:
    ``ultralytics``, Ultralytics' own defaults; ``demo``; ``smoke``); a run's config overrides
    single fields."""

    preset: str = "ultralytics"

    @classmethod
    def from_settings(cls) -> TrainingPresetResource:
        """The value of the environment (:mod:`imgassets.settings`)."""
        return cls(preset=settings.training_preset())


class LabelingPolicyResource(dg.ConfigurableResource):
    """How ``labeling_queue`` ranks a scientist's unlabelled images: the budget
    (``IMGASSETS_LABELING_TOP``, images ranked) and the strategy (``IMGASSETS_LABELING_STRATEGY``:
    ``uncertainty`` or ``random``; :mod:`imgassets.core.labeling.queue`)."""

    top: int = LabelingPolicy.top
    strategy: str = LabelingPolicy.strategy

    @classmethod
    def from_settings(cls) -> LabelingPolicyResource:
        """The values of the environment (:mod:`imgassets.settings`)."""
        return cls(top=settings.labeling_top(), strategy=settings.labeling_strategy())

    def policy(self) -> LabelingPolicy:
        """The core's :class:`~imgassets.core.labeling.build.LabelingPolicy`."""
        return LabelingPolicy(self.top, self.strategy)


def policy_resources() -> dict:
    """The policy resources by the names the assets ask for, from the environment."""
    return {"dataset_policy": DatasetPolicyResource.from_settings(),
            "evaluation_policy": EvaluationPolicyResource.from_settings(),
            "training_preset": TrainingPresetResource.from_settings(),
            "labeling_policy": LabelingPolicyResource.from_settings()}
