"""Figures of one run: learning curves, decision boundary, confusion matrix, predictions, weights.

Every function draws on its own `matplotlib.figure.Figure` with the Agg canvas attached
explicitly, so nothing here touches pyplot's global state or the process-wide backend (a
user's notebook or another module keeps whatever backend it chose). Each function writes one
PNG of a fixed pixel size and returns its path; `log_run_plots` decides which apply to a run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from mlplab.errors import ConfigError, choices

logger = logging.getLogger(__name__)

DPI = 100
RUN_PLOTS = (
    "learning_curves",
    "decision_boundary",
    "confusion_matrix",
    "predicted_vs_true",
    "weight_histograms",
)
SWEEP_PLOT_NAMES = ("parallel_coordinates", "metric_vs_param")  # drawn by plots_sweep
SPLIT_PREFIXES = ("train_", "val_", "test_")
SPLIT_STYLE = {"train": "-", "val": "-.", "test": "--"}
BOUNDARY_GRID = 200


def new_figure(width: float, height: float, margins=None):
    """A figure bound to the Agg canvas directly (no pyplot, no global backend switch).

    Margins are fixed rather than computed by a layout engine: constrained layout measures
    every tick label in an extra draw and doubled the time per figure.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    inch_w, inch_h = 1.0 / width, 1.0 / height
    adjust = {"left": 0.75 * inch_w, "right": 1 - 0.2 * inch_w, "bottom": 0.55 * inch_h,
              "top": 1 - 0.4 * inch_h, "wspace": 0.3, "hspace": 0.45}
    adjust.update(margins or {})
    figure.subplots_adjust(**adjust)
    return figure


def save_figure(figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def split_metric_key(key: str) -> tuple[str, str]:
    """`test_edenau_loss` -> ("test", "edenau_loss"); keys without a split prefix -> ("", key)."""
    for prefix in SPLIT_PREFIXES:
        if key.startswith(prefix):
            return prefix[:-1], key[len(prefix) :]
    return "", key


def learning_curves(history: Mapping[str, Sequence[tuple[int, float]]], path, log_scale=False):
    """One panel per metric (loss first, then accuracy, then the rest), one line per split."""
    panels: dict[str, dict[str, Sequence[tuple[int, float]]]] = {}
    for key, points in history.items():
        if len(points):
            split, metric = split_metric_key(key)
            panels.setdefault(metric, {})[split or key] = points
    if not panels:
        raise ValueError("learning_curves: history holds no points")
    order = sorted(panels, key=lambda m: (m != "loss", m != "accuracy", m))
    figure = new_figure(4.0 * len(order), 3.2)
    for axes, metric in zip(figure.subplots(1, len(order), squeeze=False)[0], order, strict=True):
        for split, points in sorted(panels[metric].items(), key=_split_order):
            epochs, values = np.asarray(points, dtype=float).reshape(-1, 2).T
            axes.plot(epochs, values, SPLIT_STYLE.get(split, ":"), label=split, marker=None)
        if log_scale and metric != "accuracy" and _all_positive(panels[metric]):
            axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_title(metric.replace("_", " "))
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    return save_figure(figure, path)


def _split_order(item) -> tuple[int, str]:
    """train, val, test, then anything else by name: the legend reads in data-flow order."""
    split = item[0]
    return (list(SPLIT_STYLE).index(split) if split in SPLIT_STYLE else len(SPLIT_STYLE), split)


def _all_positive(series: Mapping[str, Sequence[tuple[int, float]]]) -> bool:
    values = np.concatenate(
        [np.asarray(p, dtype=float).reshape(-1, 2)[:, 1] for p in series.values()])
    return bool(np.all(values[np.isfinite(values)] > 0))


def wants_log_scale(history: Mapping[str, Sequence[tuple[int, float]]]) -> bool:
    """Losses spanning more than two decades read better on a log axis."""
    losses = [
        v for k, pts in history.items() if k.endswith("loss") for _, v in pts if math.isfinite(v)
    ]
    return bool(losses) and min(losses) > 0 and max(losses) / min(losses) > 100


def decision_boundary(predict_proba_fn: Callable, X, y, path, grid=BOUNDARY_GRID):
    """Class regions of a 2-D classifier over a grid, with the given (test) points on top.

    `predict_proba_fn(points)` takes sample-major `(n, 2)` inputs in the dataset's original
    units and returns P(class 1) as `(n,)` or `(n, 1)`, or class probabilities `(n, k)`.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int).ravel()
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_boundary needs 2-D inputs, got shape {X.shape}")
    low, high = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * np.maximum(high - low, 1e-12)
    gx = np.linspace(low[0] - margin[0], high[0] + margin[0], grid)
    gy = np.linspace(low[1] - margin[1], high[1] + margin[1], grid)
    mesh_x, mesh_y = np.meshgrid(gx, gy)
    points = np.column_stack([mesh_x.ravel(), mesh_y.ravel()])
    proba = np.asarray(predict_proba_fn(points), dtype=float)
    figure = new_figure(5.0, 4.4)
    axes = figure.subplots()
    if proba.ndim == 1 or proba.shape[1] == 1:
        surface = np.clip(proba.reshape(grid, grid), 0.0, 1.0)
        filled = axes.contourf(mesh_x, mesh_y, surface, levels=np.linspace(0, 1, 11),
                               cmap="RdBu_r", alpha=0.5)  # light, so the points stand out
        axes.contour(mesh_x, mesh_y, surface, levels=[0.5], colors="k", linewidths=1.2)
        figure.colorbar(filled, ax=axes, label="P(class 1)")
        n_classes = 2
    else:
        n_classes = proba.shape[1]
        labels = proba.argmax(axis=1).reshape(grid, grid)
        axes.contourf(mesh_x, mesh_y, labels, levels=np.arange(n_classes + 1) - 0.5,
                      cmap="tab10", vmin=0, vmax=9, alpha=0.45)
    two = n_classes == 2
    axes.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r" if two else "tab10", vmin=0,
                 vmax=1 if two else 9, edgecolors="k", linewidths=0.5, s=18)
    axes.set_xlabel("x0")
    axes.set_ylabel("x1")
    axes.set_title("decision boundary (test points)")
    return save_figure(figure, path)


def confusion_counts(y_true, y_pred, n_classes: int) -> np.ndarray:
    """counts[i, j] = number of samples of true class i predicted as class j."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    true = np.asarray(y_true, dtype=int).ravel()
    np.add.at(counts, (true, np.asarray(y_pred, dtype=int).ravel()), 1)
    return counts


def confusion_matrix(y_true, y_pred, n_classes: int, path):
    """Counts with the number written in each cell (rows: true class, columns: predicted)."""
    counts = confusion_counts(y_true, y_pred, n_classes)
    side = min(8.0, 2.5 + 0.45 * n_classes)
    figure = new_figure(side + 0.8, side)
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    if n_classes <= 20:
        threshold = counts.max() / 2 if counts.size else 0
        for (i, j), count in np.ndenumerate(counts):
            axes.text(j, i, str(count), ha="center", va="center", fontsize="small",
                      color="white" if count > threshold else "black")
        axes.set_xticks(range(n_classes))
        axes.set_yticks(range(n_classes))
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"confusion matrix (accuracy {accuracy:.4f})")
    return save_figure(figure, path)


def predicted_vs_true(y_true, y_pred, path, names=None):
    """One scatter panel per regression output, with the identity line for reference."""
    y_true = np.asarray(y_true, dtype=float).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(len(y_pred), -1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"predicted_vs_true: shapes differ, {y_true.shape} vs {y_pred.shape}")
    k = y_true.shape[1]
    names = list(names) if names is not None else [f"y{i}" for i in range(k)]
    figure = new_figure(3.4 * k, 3.4)
    for i, axes in enumerate(figure.subplots(1, k, squeeze=False)[0]):
        truth, guess = y_true[:, i], y_pred[:, i]
        axes.scatter(truth, guess, s=6, alpha=0.5, linewidths=0)
        low, high = min(truth.min(), guess.min()), max(truth.max(), guess.max())
        axes.plot([low, high], [low, high], "k--", linewidth=1)
        rmse = float(np.sqrt(np.mean((guess - truth) ** 2)))
        axes.set_title(f"{names[i]}  (RMSE {rmse:.4g})", fontsize="medium")
        axes.set_xlabel("true")
        axes.set_ylabel("predicted")
        axes.grid(alpha=0.3)
    return save_figure(figure, path)


def weight_histograms(state_dict: Mapping[str, np.ndarray], grads_or_None, path, bins=40):
    """Per layer: histogram of W (and b) values; a second row of gradients when given.

    `grads_or_None` is a mapping with the same names as `state_dict` (or None); a gradient
    panel's title carries its L2 norm, the number one watches for vanishing/exploding layers.
    """
    layers = sorted({name[1:] for name in state_dict if name[:1] in "Wb"}, key=_layer_number)
    if not layers:
        raise ValueError("weight_histograms: state_dict has no W<k>/b<k> entries")
    rows = 2 if grads_or_None else 1
    figure = new_figure(max(3.0 * len(layers), 4.0), 2.6 * rows)
    grid = figure.subplots(rows, len(layers), squeeze=False)
    for column, layer in enumerate(layers):
        _histogram(grid[0][column], state_dict, layer, bins, f"layer {layer} values")
        if rows == 2:
            norm = math.sqrt(sum(float(np.sum(np.square(grads_or_None[f"{p}{layer}"])))
                                 for p in "Wb" if f"{p}{layer}" in grads_or_None))
            _histogram(grid[1][column], grads_or_None, layer, bins,
                       f"layer {layer} grads |g|={norm:.3g}")
    return save_figure(figure, path)


def _layer_number(layer: str):
    return (0, int(layer)) if layer.isdigit() else (1, layer)


def _histogram(axes, arrays, layer, bins, title):
    """Weights as a histogram, biases as a rug of ticks under it: a layer has far fewer
    biases than weights (often all zero), and a bar chart of them would dwarf the weights."""
    weights = arrays.get(f"W{layer}")
    if weights is not None:
        values = np.asarray(weights, dtype=float).ravel()
        axes.hist(values[np.isfinite(values)], bins=bins, histtype="stepfilled",
                  color="tab:blue", alpha=0.7, label="W")
    biases = arrays.get(f"b{layer}")
    if biases is not None:
        axes.plot(np.asarray(biases, dtype=float).ravel(), np.zeros(np.size(biases)), "|",
                  color="tab:orange", markersize=12, label="b")
    axes.set_title(title, fontsize="small")
    axes.legend(fontsize="x-small")


def selected_plots(cfg_plots, known=RUN_PLOTS, key="logger.plots") -> set[str]:
    """`logger.plots`: true/null -> all, false -> none, a list -> those names (validated).
    The strings "true"/"all" and "false"/"none" mean the same as the booleans."""
    words = {"true": True, "all": True, "false": False, "none": False, "null": None}
    if isinstance(cfg_plots, str) and cfg_plots.lower() in words:  # typed on a command line
        cfg_plots = words[cfg_plots.lower()]
    if cfg_plots is None or cfg_plots is True:
        return set(known)
    if cfg_plots is False:
        return set()
    if isinstance(cfg_plots, str):
        cfg_plots = [cfg_plots]
    names = {str(name) for name in cfg_plots}
    unknown = names - set(RUN_PLOTS) - set(SWEEP_PLOT_NAMES)
    if unknown:
        valid = choices((*RUN_PLOTS, *SWEEP_PLOT_NAMES, "true", "false", "all", "none"))
        raise ConfigError(f"{key}: unknown plot {sorted(unknown)[0]!r}; valid choices: {valid}")
    return names & set(known)


def log_run_plots(model, dataset, history, out_dir, cfg_plots=True, grads=None) -> list[Path]:
    """Draw every plot that applies to this run into `out_dir`; return the written paths.

    Applies: learning curves (when there is history), weight histograms, and by task
    confusion matrix + decision boundary (2-D inputs only, single-label classifiers) or
    predicted-vs-true. Dataset
    arrays are in model units; the figures show original units (scalers inverted). A plot
    that fails is reported as a warning and skipped: a figure never costs a training run.
    `cfg_plots` is `logger.plots` (true / false / list of names).
    """
    wanted = selected_plots(cfg_plots)
    out_dir = Path(out_dir)
    jobs = []
    if "learning_curves" in wanted and history and any(len(v) for v in history.values()):
        jobs.append(("learning_curves",
                     lambda p: learning_curves(history, p, log_scale=wants_log_scale(history))))
    if "weight_histograms" in wanted:
        jobs.append(("weight_histograms",
                     lambda p: weight_histograms(model.state_dict(), grads, p)))
    outputs = np.asarray(model.predict(np.ascontiguousarray(dataset.X_test.T))).T
    if dataset.task == "regression":
        if "predicted_vs_true" in wanted:
            jobs.append(("predicted_vs_true", lambda p: predicted_vs_true(
                dataset.to_original_units(dataset.y_test), dataset.to_original_units(outputs), p,
                names=(getattr(dataset, "info", None) or {}).get("target_names"))))
    elif dataset.task in ("binary", "multiclass"):  # (multilabel: no single class to plot)
        labels = class_labels(outputs)
        n_classes = int(dataset.n_classes or max(2, outputs.shape[1]))
        if "confusion_matrix" in wanted:
            jobs.append(("confusion_matrix",
                         lambda p: confusion_matrix(dataset.y_test, labels, n_classes, p)))
        if "decision_boundary" in wanted and dataset.n_features == 2:
            jobs.append(("decision_boundary", lambda p: decision_boundary(
                lambda points: _probabilities(model, dataset, points),
                _original_inputs(dataset, dataset.X_test), dataset.y_test, p)))
    return draw_all(jobs, out_dir)


def draw_all(jobs, out_dir: Path) -> list[Path]:
    """Run `(name, draw(path))` jobs into `out_dir/<name>.png`; a failing figure becomes a
    warning and is skipped, because a plot must never cost a training run or a sweep."""
    written = []
    for name, draw in jobs:
        try:
            written.append(draw(out_dir / f"{name}.png"))
        except Exception as error:  # noqa: BLE001 - see the docstring
            logger.warning("plot %s skipped: %s: %s", name, type(error).__name__, error)
    return written


def class_labels(outputs: np.ndarray) -> np.ndarray:
    """Sample-major network outputs -> labels: one sigmoid unit thresholds at 0.5."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] >= 0.5).astype(np.int64)
    return outputs.argmax(axis=1)


def _original_inputs(dataset, X):
    return X if dataset.x_scaler is None else dataset.x_scaler.inverse_transform(X)


def _probabilities(model, dataset, points):
    """Network outputs for original-unit points (n, 2), sample-major."""
    if dataset.x_scaler is not None:
        points = dataset.x_scaler.transform(points)
    points = np.ascontiguousarray(np.asarray(points, dtype=model.dtype).T)
    return np.asarray(model.predict(points)).T
