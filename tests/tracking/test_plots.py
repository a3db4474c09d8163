"""Run plots: each renders a real, non-blank PNG of the size its layout implies, and the
pictures encode what they claim (colours follow probabilities, panels follow metrics)."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from mlplab.data.dataset import Dataset
from mlplab.data.scalers import Standardizer
from mlplab.errors import ConfigError
from mlplab.nn.model import MLP
from mlplab.tracking import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png(path, size=None) -> np.ndarray:
    """Decode a PNG, check its magic bytes and pixel size, and that it is not blank."""
    from matplotlib.image import imread

    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC
    image = imread(path)[..., :3]
    if size is not None:
        assert (image.shape[1], image.shape[0]) == size
    rgb = (image.reshape(-1, 3) * 255).astype(np.uint32)
    colours = np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])
    assert len(colours) > 20, "image looks blank"
    assert image.std() > 0.05
    return image


def history(epochs=30, classifier=True):
    out = {"train_loss": [(e, 2.0 / e) for e in range(1, epochs + 1)],
           "test_loss": [(e, 2.5 / e) for e in range(1, epochs + 1)]}
    if classifier:
        out["train_accuracy"] = [(e, 1 - 1 / (e + 1)) for e in range(1, epochs + 1)]
        out["test_accuracy"] = [(e, 1 - 1.2 / (e + 1)) for e in range(1, epochs + 1)]
    return out


def test_learning_curves_one_panel_per_metric(tmp_path):
    one = plots.learning_curves(history(classifier=False), tmp_path / "a.png")
    two = plots.learning_curves(history(), tmp_path / "b.png", log_scale=True)
    extra = dict(history(), train_edenau_loss=[(1, 3.0), (2, 1.0)])
    three = plots.learning_curves(extra, tmp_path / "c.png")
    read_png(one, size=(400, 320))
    read_png(two, size=(800, 320))
    read_png(three, size=(1200, 320))


def test_learning_curves_refuses_empty_history(tmp_path):
    with pytest.raises(ValueError, match="no points"):
        plots.learning_curves({"train_loss": []}, tmp_path / "x.png")


def test_metric_key_split_and_log_scale_rule():
    assert plots.split_metric_key("test_edenau_loss") == ("test", "edenau_loss")
    assert plots.split_metric_key("val_accuracy") == ("val", "accuracy")
    assert plots.split_metric_key("lr") == ("", "lr")
    assert plots.wants_log_scale({"train_loss": [(1, 10.0), (2, 0.01)]})
    assert not plots.wants_log_scale({"train_loss": [(1, 1.0), (2, 0.5)]})


def red_and_blue_fractions(image):
    """Shares of reddish (class 1 in RdBu_r) and bluish (class 0) pixels."""
    red = image[..., 0] - image[..., 2] > 0.1
    blue = image[..., 2] - image[..., 0] > 0.1
    return red.mean(), blue.mean()


def test_decision_boundary_colours_follow_probabilities(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(60, 2))
    y = (X[:, 0] > 0.8).astype(int)

    # P(class 1) is high only where x0 > 0.8: the picture must be mostly class-0 blue.
    def mostly_zero(points):
        return 1 / (1 + np.exp(-40 * (points[:, 0] - 0.8)))

    image = read_png(plots.decision_boundary(mostly_zero, X, y, tmp_path / "zero.png"),
                     size=(500, 440))
    red, blue = red_and_blue_fractions(image)
    assert blue > 3 * red

    image = read_png(plots.decision_boundary(lambda p: 1 - mostly_zero(p), X, y,
                                             tmp_path / "one.png"))
    red, blue = red_and_blue_fractions(image)
    assert red > 3 * blue


def test_decision_boundary_multiclass_and_bad_shape(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 2))

    def three_classes(points):
        logits = np.column_stack([points[:, 0], points[:, 1], -points[:, 0]])
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    read_png(plots.decision_boundary(three_classes, X, three_classes(X).argmax(1),
                                     tmp_path / "three.png"))
    with pytest.raises(ValueError, match="2-D inputs"):
        plots.decision_boundary(three_classes, rng.normal(size=(5, 3)), np.zeros(5),
                                tmp_path / "bad.png")


def test_confusion_counts_match_a_loop():
    rng = np.random.default_rng(2)
    truth, guess = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    expected = np.zeros((4, 4), dtype=int)
    for t, g in zip(truth, guess, strict=True):
        expected[t, g] += 1
    np.testing.assert_array_equal(plots.confusion_counts(truth, guess, 4), expected)


def test_confusion_matrix_png(tmp_path):
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 10, 300)
    guess = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 10, 300))
    read_png(plots.confusion_matrix(truth, guess, 10, tmp_path / "cm.png"))


def test_predicted_vs_true_one_panel_per_output(tmp_path):
    rng = np.random.default_rng(4)
    truth = rng.normal(size=(100, 3))
    path = plots.predicted_vs_true(truth, truth + 0.1 * rng.normal(size=truth.shape),
                                   tmp_path / "pvt.png", names=["a+b", "a-b", "|a-b|"])
    read_png(path, size=(1020, 340))
    with pytest.raises(ValueError, match="shapes differ"):
        plots.predicted_vs_true(truth, truth[:, :2], tmp_path / "bad.png")


def test_weight_histograms_gradient_row(tmp_path):
    model = MLP([2, 8, 8, 1], ["relu", "relu", "sigmoid"], "binary_cross_entropy", seed=0)
    state = model.state_dict()
    read_png(plots.weight_histograms(state, None, tmp_path / "w.png"), size=(900, 260))
    grads = {k: 0.01 * v for k, v in state.items()}
    read_png(plots.weight_histograms(state, grads, tmp_path / "wg.png"), size=(900, 520))


def test_selected_plots_reads_logger_plots():
    assert plots.selected_plots(True) == set(plots.RUN_PLOTS)
    assert plots.selected_plots(None) == set(plots.RUN_PLOTS)
    assert plots.selected_plots(False) == set()
    assert plots.selected_plots("none") == set() and plots.selected_plots("False") == set()
    assert plots.selected_plots("all") == set(plots.RUN_PLOTS)
    assert plots.selected_plots("learning_curves") == {"learning_curves"}
    assert plots.selected_plots(["confusion_matrix", "metric_vs_param"]) == {"confusion_matrix"}
    with pytest.raises(ConfigError, match=r"logger\.plots: unknown plot 'confusion'.*valid"):
        plots.selected_plots(["confusion"])


def two_feature_dataset(task, seed=0):
    """A tiny Dataset in model units (standardized inputs), as the data loaders build it."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(-3, 3, size=(120, 2)) * [10.0, 1.0] + [50.0, 0.0]
    scaler = Standardizer().fit(raw[:80])
    X = scaler.transform(raw)
    if task == "regression":
        y = np.column_stack([raw.sum(1), raw[:, 0] - raw[:, 1]])
        y_scaler = Standardizer().fit(y[:80])
        y, n_classes = y_scaler.transform(y), None
    else:
        y, y_scaler, n_classes = (X[:, 0] * X[:, 1] > 0).astype(np.int64), None, 2
    return Dataset("toy", task, X[:80], y[:80], X[80:], y[80:], n_classes=n_classes,
                   x_scaler=scaler, y_scaler=y_scaler)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_log_run_plots_picks_plots_by_task(tmp_path, task):
    dataset = two_feature_dataset(task)
    out = dataset.n_outputs
    model = MLP([2, 16, out], ["tanh", "sigmoid" if task == "binary" else "identity"],
                "binary_cross_entropy" if task == "binary" else "mse", seed=0)
    started = time.perf_counter()
    written = plots.log_run_plots(model, dataset, history(classifier=task == "binary"),
                                  tmp_path, cfg_plots=True)
    elapsed = time.perf_counter() - started
    names = {p.stem for p in written}
    expected = {"learning_curves", "weight_histograms"} | (
        {"confusion_matrix", "decision_boundary"} if task == "binary" else {"predicted_vs_true"})
    assert names == expected
    for path in written:
        read_png(path)
    assert elapsed < 4 * len(written)  # generous: the machine is shared; typical 0.2 s each


def test_log_run_plots_respects_the_opt_out(tmp_path):
    dataset = two_feature_dataset("binary")
    model = MLP([2, 4, 1], ["relu", "sigmoid"], "binary_cross_entropy", seed=0)
    assert plots.log_run_plots(model, dataset, history(), tmp_path / "none", False) == []
    only = plots.log_run_plots(model, dataset, history(), tmp_path / "one", ["learning_curves"])
    assert [p.name for p in only] == ["learning_curves.png"]
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["learning_curves.png"]


def test_a_failing_plot_is_a_warning_not_an_error(tmp_path, caplog):
    dataset = two_feature_dataset("binary")
    model = MLP([2, 4, 1], ["relu", "sigmoid"], "binary_cross_entropy", seed=0)
    broken = {"train_loss": [(1, "not a number")]}
    with caplog.at_level(logging.WARNING, logger="mlplab.tracking.plots"):
        written = plots.log_run_plots(model, dataset, broken, tmp_path, ["learning_curves",
                                                                         "confusion_matrix"])
    assert [p.name for p in written] == ["confusion_matrix.png"]
    assert "plot learning_curves skipped" in caplog.text


def test_decision_boundary_is_drawn_in_original_units(tmp_path, monkeypatch):
    """The figure's points are the test inputs mapped back through the scaler."""
    dataset = two_feature_dataset("binary")
    model = MLP([2, 4, 1], ["relu", "sigmoid"], "binary_cross_entropy", seed=0)
    seen = {}

    def spy(predict_proba_fn, X, y, path, grid=plots.BOUNDARY_GRID):
        seen["X"], seen["proba"] = X, predict_proba_fn(X)
        return plots.learning_curves(history(), path)

    monkeypatch.setattr(plots, "decision_boundary", spy)
    plots.log_run_plots(model, dataset, {}, tmp_path, ["decision_boundary"])
    raw_test = dataset.x_scaler.inverse_transform(dataset.X_test)
    np.testing.assert_allclose(seen["X"], raw_test)
    assert seen["X"][:, 0].mean() > 20  # original units, not standardized ones
    expected = model.predict(dataset.X_test.T).T
    np.testing.assert_allclose(seen["proba"], expected, rtol=1e-12, atol=1e-12)


def test_plots_leave_pyplot_and_the_backend_alone(tmp_path):
    """Drawing must not import pyplot nor switch the process-wide backend."""
    import subprocess
    import sys

    script = (
        "import sys, matplotlib\n"
        "matplotlib.use('svg')\n"
        "from mlplab.tracking import plots\n"
        f"plots.learning_curves({{'train_loss': [(1, 1.0)]}}, {str(tmp_path / 'a.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    read_png(tmp_path / "a.png")


def test_a_multilabel_run_gets_no_single_label_plots_and_no_warning(tmp_path, caplog):
    dataset = two_feature_dataset("binary")
    labels = np.column_stack([dataset.y_train, 1 - dataset.y_train])
    multilabel = Dataset("toy", "multilabel", dataset.X_train, labels, dataset.X_test,
                         np.column_stack([dataset.y_test, 1 - dataset.y_test]))
    model = MLP([2, 8, 2], ["relu", "sigmoid"], "binary_cross_entropy", seed=0,
                norm="layer", dropout=0.2)
    with caplog.at_level(logging.WARNING, logger="mlplab.tracking.plots"):
        written = plots.log_run_plots(model, multilabel, history(), tmp_path, cfg_plots=True)
    assert {p.stem for p in written} == {"learning_curves", "weight_histograms"}
    assert "skipped" not in caplog.text
