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
