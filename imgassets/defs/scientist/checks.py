"""The image index's asset checks, in one step (a multi-asset check): each is still its own check
in the UI, with its own result and severity, but the index is loaded once. What each checks, and
the label table's checks (reported by the label table asset itself):
:mod:`imgassets.defs.scientist.check_specs`.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from imgassets.core.images.duplicates import duplicate_report
from imgassets.core.images.index import rejected_images, valid_images
from imgassets.core.images.quality import quality_outliers, quality_plot_png
from imgassets.core.images.thumbnails import finding_pictures, markdown_image
from imgassets.core.labels.checks import Finding
from imgassets.defs.resources import SharedDrive
from imgassets.defs.scientist.check_specs import IMAGE_CHECKS, result, specs
from imgassets.errors import Reason


@dg.multi_asset_check(specs=specs("image_index", IMAGE_CHECKS), name="image_index_checks",
                      ins={"image_index": dg.AssetIn("image_index")})
def image_index_checks(context: dg.AssetCheckExecutionContext, shared_drive: SharedDrive,
                       image_index: pd.DataFrame) -> Iterator[dg.AssetCheckResult]:
    """The image index's checks (:data:`IMAGE_CHECKS`), in one step; rejected images that can
    still be drawn are shown."""
    rejected = rejected_images(image_index)
    findings = [Finding(r.path, 0, f"{r.status}: {r.reason}", Reason.IMAGE_REJECTED) for r in rejected.itertuples()]
    pictures = finding_pictures(shared_drive.folder(context.partition_key), findings) if findings else ""
    yield result("image_index", IMAGE_CHECKS, "images_decode", findings, pictures)
    images = valid_images(image_index)
    report = duplicate_report(list(zip(images["path"], images["sha256"], images["phash"], strict=True)))
    yield result("image_index", IMAGE_CHECKS, "duplicate_images",
                 [Finding(path, 0, reason, Reason.DUPLICATE_IMAGE) for path, reason in report])
    outliers = [Finding(o.path, 0, o.reason, Reason.IMAGE_QUALITY)
                for o in quality_outliers(image_index, context.partition_key)]
    plot = quality_plot_png(image_index, context.partition_key)
    yield result("image_index", IMAGE_CHECKS, "image_quality", outliers,
                 finding_pictures(shared_drive.folder(context.partition_key), outliers) if outliers else "",
                 {"distributions": dg.MetadataValue.md(markdown_image("image quality distributions", plot, "image/png"))}
                 if plot else None)


QUALITY_CHECKS = [image_index_checks]
