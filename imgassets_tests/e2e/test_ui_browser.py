"""The Dagster UI in a real browser: Playwright drives Debian's headless Chromium against
`dagster dev` on loopback. A scientist opens the asset graph, launches a materialization of one
scientist's partition from the UI, sees the run succeed, and (training follows by automation)
opens the model asset to see its metrics. Screenshots land in ``test-artifacts/ui/``."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from imgassets_tests.conftest import REPO_ROOT, add_scientists, image_bytes, small_books
from imgassets_tests.e2e.dagster_dev import dagster_dev

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Run as root in a sandbox with no network: without these, Chromium refuses to start or keeps
# trying to reach Google's hosts.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"


@pytest.fixture
def browser_page():
    """A 1600x1000 page in headless Debian Chromium (no browser download is possible here)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: `apt-get install -y chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _skip_welcome(page) -> None:
    """The first visit shows a "Join the Dagster community" dialog, at some point after the page
    loads (it once appeared after a check for it had passed, and its backdrop then blocked every
    click): a locator handler skips it whenever it shows up before an action."""
    page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())


def _check_picture(page, url: str, row: str, shot: str):
    """Open ``url`` (an asset check's page), show the Markdown of its metadata row ``row`` and
    return the one picture in it (a screenshot ``shot`` taken once the dialog has faded in)."""
    from playwright.sync_api import expect

    page.goto(url, wait_until="networkidle")
    page.get_by_role("row").filter(has=page.get_by_text(row, exact=True)).get_by_text("[Show Markdown]").click()
    shown = page.get_by_role("dialog").locator("img")
    expect(shown).to_have_count(1)
    page.wait_for_timeout(500)  # the dialog fades in
    _shot(page, shot)
    return shown.first


def test_launch_a_scientist_partition_from_the_ui_and_see_the_model_metrics(tmp_path, browser_page):
    from playwright.sync_api import expect

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    page = browser_page
    drive = tmp_path / "drive"
    small_books(drive / "ana", count=8)
    (drive / "ana" / "images" / "tiny.png").write_bytes(image_bytes("PNG", (8, 8)))  # rejected: too small
    small_books(drive / "ben", count=8)
    with dagster_dev(tmp_path, drive, IMGASSETS_DRIVE_SENSOR="stopped") as ui:
        with dg.DagsterInstance.from_config(str(ui.home / "dagster")) as instance:
            add_scientists(instance, "ana", "ben")  # what the sensor would do

        _skip_welcome(page)
        page.goto(f"{ui.base}/asset-groups", wait_until="networkidle")  # the global lineage, as it first opens
        for asset in ("image_index", "label_table", "image_snapshot", "retractions", "training_dataset", "yolo_model",
                      "model_evaluation", "champion_model"):  # one group: every asset drawn, none collapsed
            expect(page.get_by_text(asset, exact=True).first).to_be_visible()
        _shot(page, "01-asset-graph")

        page.goto(f"{ui.base}/locations/imgassets/jobs/scientist_job", wait_until="networkidle")
        page.get_by_role("button", name="Materialize all…").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("Launch runs to materialize 3 assets")).to_be_visible()
        dialog.get_by_text("Select a partition or create one").click()
        page.get_by_text("ana", exact=True).filter(visible=True).first.click()
        dialog.get_by_text("Launch runs to materialize 3 assets").click()  # closes the partition list
        _shot(page, "02-launch-dialog")
        dialog.get_by_role("button", name="Launch 1 run").click()

        def ana_run():
            return [r for r in ui.runs() if {"key": "dagster/partition", "value": "ana"} in r["tags"]]

        run = ui.wait_for("the run launched from the UI", ana_run, 60)[0]
        assert run["jobName"] == "scientist_job"
        page.goto(f"{ui.base}/runs/{run['runId']}", wait_until="networkidle")
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=240_000)
        _shot(page, "03-run-success")
        assert {m["partition"] for m in ui.materializations("image_snapshot")} == {"ana"}  # ben untouched

        # the rejected image is shown on its check, where a person would rather look than read
        rejected = _check_picture(page, f"{ui.base}/assets/image_index?view=checks&partition=ana&checkDetail=images_decode",
                                  "pictures", "04-rejected-image-on-its-check")
        assert rejected.get_attribute("alt") == "images/tiny.png"
        assert rejected.evaluate("image => image.complete && image.naturalWidth") >= 320  # decoded, enlarged
        page.get_by_role("button", name="Close").click()

        # the folder's image-quality distributions are a plot on their check
        plot = _check_picture(page, f"{ui.base}/assets/image_index?view=checks&partition=ana&checkDetail=image_quality",
                              "distributions", "04b-image-quality-distributions")
        assert plot.get_attribute("alt") == "image quality distributions"
        assert plot.evaluate("image => image.complete && image.naturalWidth") > 400  # decoded
        page.get_by_role("button", name="Close").click()

        ui.wait_for("yolo_model to be trained by automation", lambda: ui.materializations("yolo_model"), 400)
        page.goto(f"{ui.base}/assets/yolo_model", wait_until="networkidle")
        for key in ("mAP50-95", "mAP50", "precision", "recall", "images_per_second", "training_seconds",
                    "dataset_id", "per_class_map50_95", "epoch_curves"):
            expect(page.get_by_text(key, exact=True).first).to_be_visible()
        dataset_id = ui.latest_text_metadata("training_dataset")["dataset_id"]
        dataset_row = page.get_by_role("row").filter(has=page.get_by_text("dataset_id", exact=True))
        expect(dataset_row.first).to_contain_text(dataset_id)  # the model names the dataset it was trained on
        page.screenshot(path=str(ARTIFACTS / "05-model-metrics.png"), full_page=True)
        page.get_by_role("button", name="Plots").click()
        expect(page.get_by_text("images_per_second", exact=True).first).to_be_visible()
        _shot(page, "06-model-plots")

        # the dataset's health: the annotation heatmap is a picture in the metadata
        page.goto(f"{ui.base}/assets/training_dataset", wait_until="networkidle")
        page.get_by_placeholder("Filter metadata keys").fill("annotation_heatmap")  # the metadata is long
        page.get_by_text("[Show Markdown]").first.click()  # the only row left
        heatmap = page.get_by_role("dialog").locator("img")
        expect(heatmap).to_have_count(1)
        assert heatmap.first.get_attribute("alt") == "annotation heatmap"
        assert heatmap.first.evaluate("image => image.complete && image.naturalWidth") >= 320
        page.wait_for_timeout(500)  # the dialog fades in
        _shot(page, "07-dataset-annotation-heatmap")
