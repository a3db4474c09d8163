"""A finished sweep's verdict on the console: where its runs are, which is best, the link.

`summarize_sweep` (in the tracking layer, possibly in a worker process) returns the facts as
plain values; this module only words them, so the launching process never imports MLflow:

    sweep quick_moons/sweep 21-29-44-685123 FINISHED: 4 runs (4 completed)
    parent run 9e102c6d1f2f4e4c8d0c0c3d3c8d9a11
    best       quick_moons/optimizer.lr=0.03,seed=0 (0de427fd295f4bc886f677f1ac8db66d)
               test_loss = 0.0265835
    top 4 by test_loss (lowest first):
      1  0.0265835  0de427fd295f4bc886f677f1ac8db66d  quick_moons/optimizer.lr=0.03,seed=0
      ...
    in the MLflow UI (start it with `mlplab ui`):
      http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning&viewSt...
"""

from __future__ import annotations

from mlplab.tracking.ui_view import DEFAULT_UI_BASE, view_url


def ui_base(tracking_uri: str) -> tuple[str, str]:
    """(base URL, how to reach it): a tracking server is its own UI; a file store is seen
    through `mlplab ui` on its default port."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri, "in the MLflow UI:"
    return DEFAULT_UI_BASE, "in the MLflow UI (start it with `mlplab ui`):"


def verdict_lines(verdict: dict) -> list[str]:
    """The console lines of a sweep's verdict (see the module docstring)."""
    counts = verdict["counts"]
    total = sum(counts.values())
    name = verdict.get("parent_run_name") or verdict["parent_run_id"]
    if verdict["status"] == "DELETED":
        return [f"sweep {name}: no job made a run, so nothing to compare; its empty parent "
                f"run {verdict['parent_run_id']} was deleted"]
    shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    lines = [f"sweep {name} {verdict['status']}: {total} runs ({shown or 'none'})"
             + (f"; {verdict['reason']}" if verdict.get("reason") else ""),
             f"parent run {verdict['parent_run_id']}"]
    monitor, top = verdict["monitor"], verdict["top"]
    if top:
        best = top[0]
        lines += [f"best       {best['run_name']} ({best['run_id']})",
                  f"           {monitor} = {best['value']:.6g}",
                  f"top {len(top)} by {monitor} "
                  f"({'highest' if verdict['mode'] == 'max' else 'lowest'} first):"]
        width = max(len(f"{row['value']:.6g}") for row in top)
        lines += [f"  {rank}  {row['value']:<{width}.6g}  {row['run_id']}  {row['run_name']}"
                  for rank, row in enumerate(top, start=1)]
    else:
        lines.append(f"best       none: no child completed with a finite {monitor}")
    if verdict.get("view_key"):
        base, how = ui_base(verdict["tracking_uri"])
        lines += [how, "  " + view_url(base, verdict["experiment_id"], verdict["view_key"])]
    return lines


def print_verdict(verdict: dict | None) -> None:
    if verdict:
        print("\n".join(verdict_lines(verdict)), flush=True)
