"""Image-quality outliers, judged against the scientist's own images, and a picture of the distributions.

The image index measures every accepted image from the decode it already makes (brightness,
contrast, sharpness, entropy: :class:`imgassets.core.images.inspect.QualitySignals`; the aspect ratio
from its size). What is "dark" depends on the data: a normal microscope slide would be an outlier
among street scenes (cleanlab/cleanvision#120), so no fixed threshold is used; an image is flagged
when it lies far from the *scientist's own* images on a measure: a modified z-score
``0.6745 * (value - median) / MAD`` beyond :data:`OUTLIER_Z` (Iglewicz and Hoaglin's rule, robust to
the outliers it looks for), and visibly so (at least the measure's smallest difference, :data:`MEASURES`). Sharpness and aspect ratio are judged on their logarithms (they are
ratios). Only the side that hurts training is flagged for sharpness, contrast and entropy (blurry,
flat, little information); both sides for brightness and aspect ratio. A folder of fewer than
:data:`MIN_IMAGES` images has no distribution to judge by. A near-constant image (contrast below
:data:`NEAR_CONSTANT_CONTRAST`: a blank frame, a lens cap) is flagged whatever the folder.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from imgassets.core.images.index import QUALITY_SIGNALS, valid_images

OUTLIER_Z = 3.5
MIN_IMAGES = 20
NEAR_CONSTANT_CONTRAST = 0.004
"""RMS contrast (0..0.5) below which an image is near-constant: about one grey level of 255."""
MEASURES = {
    # measure: (judged on its log, smallest difference from the median that is flagged (in the
    # judged units: a log ratio for sharpness and aspect ratio), word for a low value, word for a
    # high value or None: not flagged)
    "brightness": (False, 0.15, "dark", "bright"),
    "contrast": (False, 0.06, "low contrast", None),
    "sharpness": (True, float(np.log(4.0)), "blurry", None),
    "entropy": (False, 1.5, "little information", None),
    "aspect_ratio": (True, float(np.log(2.2)), "narrow", "wide"),
}
"""Each measure and how it is judged. The smallest difference keeps a folder of near-identical
images (a microscope's slides) from flagging differences no one could see: an outlier must be both
far from the folder (:data:`OUTLIER_Z`) and visibly different (a portrait photo among landscape
ones, aspect ratio half the median, is not flagged; a 3:1 panorama is)."""


@dataclass(frozen=True)
class QualityOutlier:
    """One image far from its folder on one measure: ``value`` and the folder's typical range
    (``low``..``high``, the 5th to 95th percentile of the scientist's images) for the reason."""

    path: str
    measure: str
    value: float
    low: float
    high: float
    reason: str


def quality_frame(index: pd.DataFrame) -> pd.DataFrame:
    """The measures (:data:`MEASURES`) of the accepted images of ``index`` that have them, one row
    per image, indexed by path."""
    images = valid_images(index)
    if not set(QUALITY_SIGNALS) <= set(images.columns):
        return pd.DataFrame(columns=list(MEASURES))
    frame = images.set_index("path")[QUALITY_SIGNALS].astype("float64")
    frame["aspect_ratio"] = images["width"].astype("float64").to_numpy() / images["height"].astype("float64").to_numpy()
    return frame.dropna()


def robust_scores(values: np.ndarray, logarithmic: bool, smallest: float) -> np.ndarray:
    """Modified z-scores of ``values`` (of their logs when ``logarithmic``), 0 where the value is
    less than ``smallest`` from the median (or the spread is 0: then any value ``smallest`` away
    counts as far)."""
    x = np.log(np.maximum(values, 1e-12)) if logarithmic else values
    median = np.median(x)
    mad = np.median(np.abs(x - median))
    far = np.abs(x - median) >= smallest
    if mad == 0:
        return np.where(far, np.where(x > median, np.inf, -np.inf), 0.0)
    return np.where(far, 0.6745 * (x - median) / mad, 0.0)


def quality_outliers(index: pd.DataFrame, scientist: str = "this folder") -> list[QualityOutlier]:
    """The outliers of ``index`` (a scientist's image index) on each measure, and its near-constant
    images (rules in the module docstring), by path then measure."""
    frame = quality_frame(index)
    found: list[QualityOutlier] = []
    for path, contrast in frame["contrast"].items():
        if contrast < NEAR_CONSTANT_CONTRAST:
            found.append(QualityOutlier(path, "contrast", float(contrast), 0.0, NEAR_CONSTANT_CONTRAST,
                                        f"near-constant image: contrast {contrast:.3f} (below {NEAR_CONSTANT_CONTRAST}): "
                                        "a blank or covered frame?"))
    flagged = {o.path for o in found}
    if len(frame) >= MIN_IMAGES:
        for measure, (logarithmic, smallest, low_word, high_word) in MEASURES.items():
            values = frame[measure].to_numpy()
            scores = robust_scores(values, logarithmic, smallest)
            low, high = np.percentile(values, [5, 95])
            for i in np.flatnonzero((scores < -OUTLIER_Z) | (scores > OUTLIER_Z if high_word else False)):
                path = frame.index[i]
                if path in flagged and measure == "contrast":
                    continue
                word = low_word if scores[i] < 0 else high_word
                found.append(QualityOutlier(path, measure, float(values[i]), float(low), float(high),
                                            f"{word} for {scientist}: {measure.replace('_', ' ')} {values[i]:.3g}, "
                                            f"typical {low:.3g}..{high:.3g} (middle 90% of {len(frame)} images)"))
    return sorted(found, key=lambda o: (o.path, o.measure))


def quality_plot_png(index: pd.DataFrame, scientist: str = "") -> bytes | None:
    """A small PNG of each measure's distribution over the scientist's images (histograms, the
    outliers' values marked in red), or None when no image has the measures."""
    frame = quality_frame(index)
    if frame.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullFormatter

    outliers = quality_outliers(index, scientist or "this folder")
    figure, axes = plt.subplots(1, len(MEASURES), figsize=(2.4 * len(MEASURES), 2.0), dpi=120)
    for axis, (measure, (logarithmic, *_)) in zip(axes, MEASURES.items(), strict=True):
        values = frame[measure].to_numpy()
        low, high = max(values.min(), 1e-6), max(values.max(), 1e-6)
        bins = np.geomspace(low / 1.1, high * 1.1, 30) if logarithmic else 30
        axis.hist(values, bins=bins, color="#4c72b0")
        if logarithmic:
            axis.set_xscale("log")
            axis.xaxis.set_major_locator(MaxNLocator(3))  # three plain ticks: a narrow range has no power of 10
            axis.xaxis.set_major_formatter(FormatStrFormatter("%.3g"))
            axis.xaxis.set_minor_formatter(NullFormatter())
        for outlier in outliers:
            if outlier.measure == measure:
                axis.axvline(outlier.value, color="#c44e52", linewidth=1)
        axis.set_title(measure.replace("_", " "), fontsize=9)
        axis.tick_params(labelsize=7)
    judged = "red: flagged" if len(frame) >= MIN_IMAGES else f"too few to judge outliers: {MIN_IMAGES} needed"
    figure.suptitle(f"image quality{' of ' + scientist if scientist else ''} ({len(frame)} images; {judged})", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
