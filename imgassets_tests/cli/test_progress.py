"""Progress on stderr: a line per training epoch, other stages throttled but always their last
line, nothing for a stage with nothing to do; a bar per stage on a terminal."""

from __future__ import annotations

from imgassets.cli.progress import shown_on_stderr
from imgassets.core.progress import Progress, report


def test_plain_lines_show_every_epoch_and_each_stages_end(capsys):
    with shown_on_stderr(terminal=False):
        indexing = Progress("indexing ana", 1000)
        for _ in range(1000):
            indexing.advance()
        Progress("pulling d", 0).advance()
        for epoch in range(1, 4):
            report("training", epoch, 3, f"mAP50 0.{epoch}")
    lines = capsys.readouterr().err.splitlines()
    assert "imgassets: indexing ana: 1000/1000" in lines  # the end of a stage is always shown
    assert sum(line.startswith("imgassets: indexing ana") for line in lines) <= 3  # throttled, not 1000 lines
    assert [line for line in lines if "training" in line] == [
        "imgassets: training: 1/3  mAP50 0.1", "imgassets: training: 2/3  mAP50 0.2", "imgassets: training: 3/3  mAP50 0.3"]
    assert not any("pulling" in line for line in lines)


def test_a_terminal_gets_a_bar_per_stage(capsys):
    with shown_on_stderr(terminal=True):
        report("training", 2, 4, "mAP50 0.5")
    err = capsys.readouterr().err
    assert "training mAP50 0.5" in err and "2/4" in err


def test_nothing_is_reported_when_nobody_listens(capsys):
    Progress("indexing", 5).advance(5)
    assert capsys.readouterr().err == ""


def test_the_summary_says_which_score_is_which():
    """The epoch lines show each epoch's val score; the model line best.pt validated again (they
    differ), and the benchmark line each model's image size."""
    import io

    from rich.console import Console

    from imgassets.cli.run import RunSummary
    from imgassets.cli.summary import print_summary

    metrics = {"mAP50": 0.793, "mAP50-95": 0.5, "precision": 0.8, "recall": 0.7}
    summary = RunSummary("/drive", "/home", [], [], model={
        "model_key": "models/d/m/best.pt", "epochs": 60, "training_seconds": 100.0, "device": "cpu", "metrics": metrics},
        evaluation={"missed_boxes": 1, "spurious_boxes": 2, "evaluation_key": "k", "benchmark": metrics,
                    "benchmark_images": 20, "champion": metrics, "benchmark_imgsz": 64, "champion_imgsz": 128,
                    "promoted": False, "promotion_decision": "not promoted: ..."})
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=300))
    text = out.getvalue()
    assert "its best epoch's weights (best.pt) validated again on the val split: mAP50 0.793" in text
    assert "benchmark (20 images) at 64 px: mAP50 0.793" in text and "champion on the same images at 128 px" in text
