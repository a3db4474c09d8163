"""Figures of a sweep, logged on its parent run: parallel coordinates and metric-vs-parameter.

A sweep's children arrive as MLflow `Run` objects (or plain dicts); `rows_from_runs` turns
them into rows `{param: value, ..., metric: float, "run_name": str, "pruned": bool}` with
numbers parsed back from MLflow's string params, so the drawing functions never see MLflow
types. Pruned runs (stopped early by the Optuna pruner) are drawn apart, in grey: their
metric is from an earlier epoch, so they neither compete for "best" nor enter the means.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mlplab.tracking.params import is_bookkeeping
from mlplab.tracking.plots import (
    SWEEP_PLOT_NAMES,
    draw_all,
    new_figure,
    save_figure,
    selected_plots,
)

SEED_KEYS = ("seed",)
PRUNED_COLOUR = "0.6"
MAX_PARAM_PLOTS = 8
MAX_SERIES = 6
MAX_AXES = 10


def parse_param(text):
    """MLflow stores params as strings: give numbers back as int/float, the rest as str."""
    if not isinstance(text, str):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def rows_from_runs(children, params: Sequence[str], metric: str) -> list[dict]:
    """One row per child with the swept params (parsed) and the metric's last value."""
    rows = []
    for child in children:
        if isinstance(child, Mapping):
            row = dict(child)
        else:
            row = {key: parse_param(child.data.params.get(key)) for key in params}
            row[metric] = child.data.metrics.get(metric)
            row["run_name"] = child.info.run_name
            row["pruned"] = child.data.tags.get("pruned") == "true"
        value = row.get(metric)
        row[metric] = float(value) if value is not None else math.nan
        rows.append(row)
    return rows


def finite_rows(rows, metric: str) -> list[dict]:
    """The rows whose run reached a finite value of the metric (failed runs have none)."""
    kept = []
    for row in rows:
        value = row.get(metric)
        if isinstance(value, int | float) and math.isfinite(value):
            kept.append(row)
    return kept


def _is_numeric(values) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _wants_log(values) -> bool:
    """Positive values spanning a decade or more: sweeps step learning rates, weight decays
    and sizes geometrically, and a linear axis would crowd the small ones together."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) >= 10


class Axis:
    """Maps one column's values to [0, 1]: numbers linearly (log if they span two decades),
    anything else as evenly spaced categories in sorted order."""

    def __init__(self, values):
        self.numeric = _is_numeric(values)
        if self.numeric:
            self.log = _wants_log(values)
            self.distinct = sorted({float(v) for v in values if math.isfinite(v)})
            t = [self._t(v) for v in self.distinct]
            self.low, self.high = (min(t), max(t)) if t else (0.0, 1.0)
        else:
            self.categories = sorted({str(v) for v in values})

    def _t(self, value):
        return math.log10(value) if self.log else float(value)

    def position(self, value) -> float:
        if not self.numeric:
            n = len(self.categories)
            return 0.5 if n == 1 else self.categories.index(str(value)) / (n - 1)
        if self.high == self.low:
            return 0.5
        return (self._t(value) - self.low) / (self.high - self.low)

    def ticks(self) -> list[tuple[float, str]]:
        if not self.numeric:
            return [(self.position(c), c) for c in self.categories]
        if len(self.distinct) <= 6:  # a grid sweep: label every value tried
            values = self.distinct
        else:
            values = [10**t if self.log else t for t in sorted({self.low, self.high})]
        return [(self.position(v), f"{v:.3g}") for v in values]


def goodness_of(scores: np.ndarray, mode: str) -> np.ndarray:
    """Larger is better: the metric itself for mode "max", its negative for "min"."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return -scores if mode == "min" else scores


def parallel_coordinates(rows, params: Sequence[str], metric: str, path, mode="min"):
    """One vertical axis per param plus the metric; one line per run, coloured by the metric
    (bright = better), the best run drawn thick, pruned runs dashed grey."""
    from matplotlib import colormaps

    rows = finite_rows(rows, metric)
    if not rows:
        raise ValueError(f"parallel_coordinates: no run has a finite {metric!r}")
    columns = [*params, metric]
    axes_of = [Axis([r[c] for r in rows]) for c in columns]
    scores = np.array([r[metric] for r in rows])
    pruned = np.array([bool(r.get("pruned")) for r in rows])
    goodness = goodness_of(scores, mode)
    span = np.ptp(goodness) or 1.0
    colours = colormaps["viridis"]((goodness - goodness.min()) / span)
    best = int(np.argmax(np.where(pruned, -np.inf, goodness))) if not pruned.all() else None
    figure = new_figure(max(5.0, 1.6 * len(columns) + 1.5), 4.4, margins={"top": 0.84})
    axes = figure.subplots()
    xs = np.arange(len(columns))
    for i, row in sorted(enumerate(rows), key=lambda item: (not pruned[item[0]],
                                                            goodness[item[0]])):
        ys = [axis.position(row[c]) for axis, c in zip(axes_of, columns, strict=True)]
        if pruned[i]:
            axes.plot(xs, ys, color=PRUNED_COLOUR, linewidth=0.8, linestyle="--", alpha=0.8,
                      zorder=1.5)
            continue
        axes.plot(xs, ys, color="crimson" if i == best else colours[i],
                  linewidth=2.5 if i == best else 1.0, alpha=1.0 if i == best else 0.7,
                  zorder=3 if i == best else 2)
    for x, axis in zip(xs, axes_of, strict=True):
        axes.axvline(x, color="0.3", linewidth=0.8, zorder=1)
        for y, label in axis.ticks():
            axes.text(x + 0.03, y, label, fontsize="x-small", va="center",
                      bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 1})
    axes.set_xticks(xs, [c + (" (log)" if a.numeric and a.log else "")
                         for c, a in zip(columns, axes_of, strict=True)], fontsize="small")
    axes.set_yticks([])
    axes.set_ylim(-0.05, 1.05)
    axes.set_xlim(-0.2, len(columns) - 0.6)
    n_pruned = int(pruned.sum())
    count = f"{len(rows)} runs" + (f" ({n_pruned} pruned, dashed)" if n_pruned else "")
    headline = (f"best {metric} = {scores[best]:.4g}\n{rows[best].get('run_name') or ''}"
                if best is not None else "every run was pruned")
    axes.set_title(f"{count}; {headline}", fontsize="small")
    return save_figure(figure, path)


def group_runs(rows, param: str, metric: str, series=None) -> dict[tuple, dict]:
    """{series values: {param value: [metric of each run with that value]}}: the runs that
    differ only by seed end up in one list."""
    groups: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[tuple(row.get(s) for s in series or ())][row[param]].append(row[metric])
    return {key: dict(by_x) for key, by_x in groups.items()}


def mean_and_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single run)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def metric_vs_param(rows, param: str, metric: str, path, group_seeds=True, series=None):
    """The metric against one param: runs sharing a param value (seeds) averaged into a line
    with a mean +- std band; with `series` (other param names) one line per combination.
    Pruned runs are grey crosses, left out of the lines."""
    rows = finite_rows(rows, metric)
    if not rows:
        raise ValueError(f"metric_vs_param: no run has a finite {metric!r}")
    x_axis = Axis([r[param] for r in rows])

    def plot_x(values) -> np.ndarray:
        return (np.array(values, dtype=float) if x_axis.numeric else
                np.array([x_axis.categories.index(str(v)) for v in values], dtype=float))

    figure = new_figure(5.5, 3.8)
    axes = figure.subplots()
    most_repeats = 1
    pruned = [r for r in rows if r.get("pruned")]
    groups = group_runs([r for r in rows if not r.get("pruned")], param, metric, series)
    for key, by_x in sorted(groups.items(), key=lambda kv: str(kv[0])):
        label = ", ".join(f"{s}={v}" for s, v in zip(series or (), key, strict=True)) or None
        xs = sorted(by_x, key=lambda v: v if x_axis.numeric else str(v))
        at = plot_x(xs)
        if group_seeds:
            mean, std = np.array([mean_and_std(by_x[x]) for x in xs]).T
            most_repeats = max(most_repeats, *(len(by_x[x]) for x in xs))
            line, = axes.plot(at, mean, marker="o", label=label)
            axes.fill_between(at, mean - std, mean + std, color=line.get_color(), alpha=0.2)
            for x, px in zip(xs, at, strict=True):
                axes.scatter([px] * len(by_x[x]), by_x[x], s=8, color=line.get_color(), alpha=0.4)
        else:
            for x, px in zip(xs, at, strict=True):
                axes.scatter([px] * len(by_x[x]), by_x[x], s=14,
                             label=label if x == xs[0] else None)
    if pruned:
        axes.scatter(plot_x([r[param] for r in pruned]), [r[metric] for r in pruned],
                     marker="x", s=18, color=PRUNED_COLOUR, label="pruned (stopped early)")
    if x_axis.numeric and x_axis.log:
        axes.set_xscale("log")
    if not x_axis.numeric:
        axes.set_xticks(range(len(x_axis.categories)), x_axis.categories, fontsize="small")
    axes.set_xlabel(param)
    axes.set_ylabel(metric)
    band = f" (mean ± std over {most_repeats} runs per value)" if most_repeats > 1 else ""
    axes.set_title(f"{metric} vs {param}{band}", fontsize="medium")
    axes.grid(alpha=0.3)
    if series or pruned:
        axes.legend(fontsize="x-small")
    return save_figure(figure, path)


def varying(rows, params) -> list[str]:
    return [p for p in params if len({str(r.get(p)) for r in rows}) > 1]


def log_sweep_plots(children, swept_params, metric: str, mode: str, out_dir,
                    cfg_plots=True) -> list[Path]:
    """Draw the sweep's figures into `out_dir` and return their paths (the caller logs
    them on the parent run under `plots/`). Failures are warnings, never errors.

    children: the child runs (MLflow `Run`s or row dicts); swept_params: the config keys
    the sweep varies (a group such as `optimizer` stands for `optimizer.name`; None: every
    param that differs between children); metric and mode ("min" | "max"): the monitored
    metric.
    """
    wanted = selected_plots(cfg_plots, known=SWEEP_PLOT_NAMES)
    if not wanted or not children:
        return []
    if swept_params is None:
        swept_params = sorted(k for k in {k for c in children for k in _param_keys(c)}
                              if k != metric and not is_bookkeeping(k))
    swept_params = [_logged_key(children, key) for key in swept_params]
    rows = rows_from_runs(children, swept_params, metric)
    params = varying(finite_rows(rows, metric), swept_params)
    if not params:
        return []
    tuned = ([p for p in params if p not in SEED_KEYS] or params)[:MAX_AXES]
    out_dir = Path(out_dir)
    jobs = []
    if "parallel_coordinates" in wanted:
        jobs.append(("parallel_coordinates",
                     lambda p: parallel_coordinates(rows, tuned, metric, p, mode=mode)))
    if "metric_vs_param" in wanted:
        for param in tuned[:MAX_PARAM_PLOTS]:
            others = [q for q in tuned if q != param]
            combos = {tuple(str(r.get(q)) for q in others) for r in rows}
            series = others if others and len(combos) <= MAX_SERIES else None
            jobs.append((f"{metric}_vs_{param.replace('.', '_')}",
                         lambda p, param=param, series=series:
                         metric_vs_param(rows, param, metric, p, series=series)))
    return draw_all(jobs, out_dir)


def _param_keys(child):
    return child.keys() if isinstance(child, Mapping) else child.data.params.keys()


def _logged_key(children, key: str) -> str:
    """A swept config group (`optimizer=sgd,adam`) is logged as `<group>.name` if at all."""
    keys = {k for c in children for k in _param_keys(c)}
    return f"{key}.name" if key not in keys and f"{key}.name" in keys else key
