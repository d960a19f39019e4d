"""The errors imgassets raises on purpose, and the reason codes of its findings.

:class:`ImgassetsError` is the base of every error imgassets raises for a reason it can name: a
caller (the command line, a test, a notebook) catches that one class to tell a user what went
wrong without a traceback. Each domain has its subclass, defined beside the code that raises it:

| error | raised by |
|---|---|
| :class:`imgassets.core.store.base.ObjectStoreError` (and its S3 subclasses) | the object stores |
| :class:`imgassets.core.store.sealed.TamperedRecordError` | a stored record (retraction, ref, model record, review) altered after it was written |
| :class:`imgassets.core.drive.source_files.SourceFileError` | reading a scientist's file |
| :class:`imgassets.core.drive.listing.ListingError` | a stored listing that cannot be used |
| :class:`imgassets.core.labels.class_map.ClassMapError` | a class map that cannot be used |
| :class:`imgassets.core.versioning.snapshot.SnapshotError` | a snapshot refused |
| :class:`imgassets.core.versioning.manifest.ManifestError`, ``EmptyDatasetError`` | a snapshot or dataset manifest refused, nothing to train on |
| :class:`imgassets.core.versioning.checkout.DestinationError` | a pull destination that holds other files |
| :class:`imgassets.core.training.train.TrainingConfigError` | training settings that cannot work |
| :class:`imgassets.core.versioning.build.DatasetBuildError` | a dataset version that cannot be built (nothing to build from, a policy refused) |
| :class:`imgassets.settings.SettingsError` | an ``IMGASSETS_*`` variable whose value cannot work |

A finding (:class:`imgassets.core.labels.checks.Finding`) carries a :class:`Reason`, a stable code
a program can match on, next to the sentence written for the scientist (as pandera's
``SchemaErrorReason`` does for schema errors).
"""

from __future__ import annotations

from enum import StrEnum


class ImgassetsError(Exception):
    """Base of the errors imgassets raises on purpose; the message names the file, key, store or
    setting at fault and never holds a secret."""


class Reason(StrEnum):
    """The reason code of a finding: which rule it broke."""

    IMAGE_REJECTED = "image_rejected"
    """An image file that is not used: unreadable, not an image, corrupt, too small or large, refused."""
    DUPLICATE_IMAGE = "duplicate_image"
    """An exact or near-duplicate of another image of the same scientist."""
    IMAGE_QUALITY = "image_quality"
    """An image far from the scientist's own images on a quality measure, or a near-constant one."""
    LABEL_SCHEMA = "label_schema"
    """A label line or file that does not parse, or a value outside the label table's schema."""
    ZERO_AREA_BOX = "zero_area_box"
    BOX_OUTSIDE_IMAGE = "box_outside_image"
    UNKNOWN_CLASS = "unknown_class"
    """A class id with no name in the class map the label file uses."""
    LABEL_WITHOUT_IMAGE = "label_without_image"
    """A label (file, or COCO/CSV entry) whose image does not exist."""
    LABEL_IMAGE_REJECTED = "label_image_rejected"
    """A label whose image the image index rejected: its boxes are left out with the image's reason."""
    LABEL_FRAME = "label_frame"
    """A label file drawn on another image size than the displayed one."""
    SOURCES_DISAGREE = "sources_disagree"
    """Label files that give one image different boxes."""
    DATA_YAML_PATH = "data_yaml_path"
    """A ``data.yaml`` split entry that names nothing in the folder."""
    SPLIT_LEAK = "split_leak"
    """An image, a near-duplicate of it, or a frame of its burst or session, in two splits."""
    LABEL_CONFLICT = "label_conflict"
    """Copies of the same bytes with different boxes."""
    CLASS_ID_CONFLICT = "class_id_conflict"
    """One local class id naming different classes for different scientists."""
    WEIGHTS_UNUSABLE = "weights_unusable"
    """Trained weights that do not load or predict."""
    LABEL_REVIEW = "label_review"
    """A label the trained model disagrees with on an image it did not train on (missing box, wrong class, mislocated)."""
    UNKNOWN_CLASS_NAME = "unknown_class_name"
    """A class name the class registry cannot map (nor a registry that can be read)."""
    CLASS_HARD_TO_MEASURE = "class_hard_to_measure"
    """A class with too few val or benchmark boxes for its metrics there to mean much."""
    PRELABELS_RUBBER_STAMPED = "prelabels_rubber_stamped"
    """Pre-annotations accepted nearly all unchanged on images whose labels the label review finds wrong."""
    NOT_PROMOTED = "not_promoted"
    """A challenger whose benchmark mAP50-95 is below the champion's, on the same images, by more than the margin."""
    SLICE_REGRESSED = "slice_regressed"
    """A benchmark slice (scientist, class, size, camera, quality) where the challenger is worse than the champion beyond the margin and the bootstrap interval."""
