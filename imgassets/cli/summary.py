"""Human-readable summary of ``imgassets run`` (rich tables on stdout)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from imgassets.cli.run import RunSummary
from imgassets.core.labels.unlabelled import mostly_unlabelled_note

MAX_FILES = 10


def format_metrics(metrics: dict[str, float]) -> str:
    """``mAP50 0.250, mAP50-95 0.110, ...`` for a metrics dict (values in [0, 1])."""
    return ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    """Print per-scientist counts, failing checks with their files, the dataset and the model."""
    console = console or Console()
    table = Table(title=f"imgassets run: {summary.shared_root}")
    for column in ("scientist", "images", "valid", "rejected", "unlabelled", "boxes", "snapshot", "status"):
        table.add_column(column)
    for s in summary.scientists:
        status = "ok" if s.success else ("blocked: " + ", ".join(s.blocked_by) if s.blocked_by else f"failed: {s.error}")
        table.add_row(s.name, str(s.images_found), str(s.images_valid), str(len(s.rejected)), str(s.unlabelled),
                      str(s.boxes), s.snapshot_id or "-", status)
    console.print(table)
    for s in summary.scientists:
        note = mostly_unlabelled_note(s.name, s.unlabelled, s.images_valid)
        if note:
            console.print(f"[yellow]unlabelled[/] {note}", highlight=False)
    for check in summary.checks:
        if check.passed:
            continue
        style = "bold red" if check.blocking else "yellow"
        kind = "BLOCKING" if check.blocking else "warning"
        console.print(f"[{style}]{kind}[/] {check.name} on {check.partition or check.asset}: {check.count} finding(s)")
        for finding in check.findings[:MAX_FILES]:
            where = f"{finding['file']}:{finding['line']}" if finding["line"] else finding["file"]
            console.print(f"    {where}: {finding['reason']}", markup=False, highlight=False)
        if check.count > MAX_FILES:
            console.print(f"    ... {check.count - MAX_FILES} more (see the check in the Dagster UI)")
    if summary.dataset:
        d = summary.dataset
        console.print(f"dataset {d['dataset_id']}: {d['images_train']} train / {d['images_val']} val / "
                      f"{d.get('images_benchmark', 0)} benchmark images, {d['classes']} classes -> {d['manifest_key']}")
        if d.get("previous_dataset_id"):
            console.print(f"  changes since {d['previous_dataset_id']}: +{d.get('diff/added', 0)} added, "
                          f"-{d.get('diff/removed', 0)} removed, {d.get('diff/relabelled', 0)} re-labelled images "
                          f"(imgassets diff latest~1 latest)", highlight=False)
        if d.get("flywheel/prelabelled_images_added"):
            console.print(f"  flywheel: {d['flywheel/labelled_images_added']} labelled image(s) added, "
                          f"{d['flywheel/prelabelled_images_added']} of them from the champion's pre-annotations: "
                          f"{d['flywheel/accepted']} box(es) accepted unchanged, {d['flywheel/corrected']} corrected, "
                          f"{d['flywheel/rejected']} rejected, {d['flywheel/added']} drawn by hand "
                          f"(acceptance {d['flywheel/acceptance_rate']:.0%})", highlight=False)
        if d.get("unlabelled_images_left_out"):
            console.print(f"  {d['unlabelled_images_left_out']} unlabelled image(s) left out (not trained on: "
                          "imgassets queue lists which to label first)", highlight=False)
        if d.get("retracted_images_left_out"):
            console.print(f"  {d['retracted_images_left_out']} retracted image(s) left out", highlight=False)
        for gone in d.get("departed_scientists") or []:
            console.print(f"[yellow]departed[/] {gone['scientist']}: folder missing from the drive since "
                          f"{gone['missing_since'][:10]}; its snapshot {gone['snapshot_id']} {gone['action']} "
                          f"(IMGASSETS_DEPARTED_POLICY)", highlight=False)
    if summary.model:
        m = summary.model
        console.print(f"model {m['model_key']} ({m['epochs']} epoch(s), {m['training_seconds']:.1f} s on {m['device']}); "
                      f"its best epoch's weights (best.pt) validated again on the val split: {format_metrics(m['metrics'])}")
    if summary.evaluation:
        e = summary.evaluation
        console.print(f"evaluation on the val split: {e['missed_boxes']} missed, {e['spurious_boxes']} spurious boxes "
                      f"-> {e['evaluation_key']}")
        if e.get("benchmark"):
            at = {who: f" at {e[who + '_imgsz']} px" if e.get(who + "_imgsz") else "" for who in ("benchmark", "champion")}
            champion = (f"; champion on the same images{at['champion']}: {format_metrics(e['champion'])}"
                        if e.get("champion") else "")
            console.print(f"benchmark ({e['benchmark_images']} images){at['benchmark']}: {format_metrics(e['benchmark'])}"
                          f"{champion}")
        if e.get("reference_mAP50-95") is not None:
            lost = sorted(e.get("error_types", {}).items(), key=lambda kv: -kv[1])[:3]
            console.print(f"COCO reference mAP50-95 {e['reference_mAP50-95']:.4f}; mAP50 lost most to "
                          + ", ".join(f"{name} {value:.3f}" for name, value in lost) + " (TIDE error types)", highlight=False)
        if e.get("slices_regressed"):
            console.print(f"[yellow]slices worse than the champion[/]: {', '.join(e['slices_regressed'])} "
                          "(no_slice_regressed; model_evaluation's slice table in the UI)", highlight=False)
        if e.get("operating_point") is not None:
            console.print(f"operating point (chosen on val): confidence {e['operating_point']}", highlight=False)
        if e.get("mlflow_run"):
            console.print(f"MLflow run: {e['mlflow_run']}", highlight=False)
        if e.get("label_review_findings"):
            console.print(f"label review: the model disagrees with {e['label_review_findings']} label(s) of images it "
                          "did not train on; each scientist's label_review check lists theirs at their next run")
        style = "green" if e.get("promoted") else "bold red"
        console.print(f"[{style}]{'promoted' if e.get('promoted') else 'not promoted'}[/]: {e.get('promotion_decision')}",
                      highlight=False)
    for q in summary.labeling:
        if q.get("error"):
            console.print(f"[bold red]labeling queue[/] {q['scientist']} failed: {q['error']}", highlight=False)
            continue
        by = f"champion {q['champion_model_id']}" if q["strategy"] != "random" else "random order (no champion yet)" \
            if q["champion_model_id"] == "none yet" else "random order"
        console.print(f"labeling queue {q['scientist']}: {q['queued']} of {q['unlabelled']} unlabelled image(s) ranked by "
                      f"{by}, {q['set_aside']} set aside (imgassets queue --scientist {q['scientist']}; "
                      f"imgassets prelabel --scientist {q['scientist']} ...)", highlight=False)
    for entry in summary.left_out:
        stand_in = entry.get("snapshot_used")
        used = f"its last good snapshot {stand_in} used" if stand_in else "not in the dataset"
        console.print(f"[yellow]left out[/] {entry['scientist']}: {entry['reason']} ({used})")
    for entry in summary.skipped_folders:
        console.print(f"skipped folder {entry['folder']}: {entry['reason']}", style="yellow", markup=False,
                      highlight=False)
    if summary.training_skipped:
        console.print(f"[bold red]training skipped[/]: {summary.training_skipped}")
    if summary.error:
        console.print(f"[bold red]error[/]: {summary.error}")
    console.print(f"home {summary.home} (open the UI: imgassets ui --home {summary.home})")
