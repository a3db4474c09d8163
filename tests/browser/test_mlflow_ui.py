"""What the MLflow UI shows at first sight, through a real browser, with no click.

`mlplab train` writes a single run and a small sweep into a temporary store, `mlplab ui`
serves it and prints a URL, and headless Chromium (Debian's, driven by playwright) opens
that URL and does nothing else. The page must show, inside the runs table's visible area,
the final metrics' column headers, the swept params' headers and (for the sweep) every
child's row with its monitored metric as the store holds it. Skips only when no Chromium
binary or no playwright is available (`.ci/install-browser` installs Chromium).

Set MLPLAB_UPDATE_SCREENSHOTS=1 to write the sweep's first screen to
docs/images/mlflow_ui_sweep.png (the README's screenshot).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import background_process, free_port, venv_env, wait_for_output

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"),
                             shutil.which("chromium-browser")) if p and Path(p).exists()), None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "mlflow_ui_sweep.png"
VIEWPORT = {"width": 1920, "height": 900}  # a desktop browser window
SWEEP, SINGLE = "quick_moons", "one_run"
SWEPT = ("optimizer.lr", "seed")
METRICS = ("test_loss", "test_accuracy", "train_loss", "train_accuracy")


def _train(root, uri, *args):
    command = [sys.executable, "-m", "mlplab", "train", *args, "logger.plots=false",
               "logger.log_model=false", f"hydra.run.dir={root / 'run'}",
               f"hydra.sweep.dir={root / 'sweep'}"]
    done = subprocess.run(command, env=venv_env({"MLFLOW_TRACKING_URI": uri}), cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one experiment holding a single run and one holding a 2 x 2 sweep."""
    root = tmp_path_factory.mktemp("ui_store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    _train(root, uri, f"experiment={SWEEP}", f"experiment_name={SINGLE}")
    _train(root, uri, "-m", f"experiment={SWEEP}", "optimizer.lr=0.03,0.3", "seed=0,1")
    return uri


def runs_of(uri, experiment):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return found.experiment_id, client.search_runs([found.experiment_id])


def first_screen(uri, experiment, tmp_path):
    """Start `mlplab ui`, open the URL it prints and wait for the table; return (url, the
    playwright page's findings) after saving the screen to tmp_path/first_screen.png."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    command = [sys.executable, "-m", "mlplab", "ui", "--port", str(free_port()),
               "--tracking-uri", uri, "--experiment", experiment]
    log_path = tmp_path / "ui.log"
    with background_process(command, log_path=log_path) as server:
        url = wait_for_output(r"http://127\.0\.0\.1:\d+/\S+", server, 180, log_path).group(0)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(90_000)
                page.goto(url)
                page.locator(".ag-row").first.wait_for()
                page.get_by_text(METRICS[0], exact=True).first.wait_for()
                page.wait_for_timeout(1500)  # let the grid settle its column widths
                page.screenshot(path=str(tmp_path / "first_screen.png"))
                return url, findings(page)
            finally:
                browser.close()


def findings(page) -> dict:
    """The column headers and row texts that lie inside the grid's visible area."""
    area = page.locator(".ag-root-wrapper").first.bounding_box()
    right, bottom = area["x"] + area["width"], area["y"] + area["height"]

    def inside(box):
        return box is not None and box["x"] >= area["x"] - 1 and box["x"] + box["width"] <= \
            right + 1 and box["y"] + box["height"] <= bottom + 1

    headers = {cell.inner_text().strip() for cell in page.locator(".ag-header-cell").all()
               if cell.is_visible() and inside(cell.bounding_box())}
    rows = [row.inner_text() for row in page.locator(".ag-row").all()
            if row.is_visible() and inside(row.bounding_box())]
    return {"headers": headers, "rows": rows, "text": page.inner_text("body")}


def _row_with(seen, text):
    return any(text in row for row in seen["rows"])


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (run .ci/install-browser)")
def test_a_sweep_opens_on_its_metrics_swept_params_and_children(store, tmp_path):
    experiment_id, runs = runs_of(store, SWEEP)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 4
    url, seen = first_screen(store, SWEEP, tmp_path)
    assert url.endswith(f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"
                        "&viewStateShareKey=mlplab")
    assert set(METRICS) | set(SWEPT) <= seen["headers"], seen["headers"]
    for child in children:  # every child's row is in sight, under its sweep's group
        assert _row_with(seen, child.info.run_name), (child.info.run_name, seen["rows"])
        assert repr(child.data.metrics["test_loss"]) in seen["text"]
    [parent] = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    assert _row_with(seen, f"Group: {parent.info.run_name}")
    best = min(children, key=lambda c: c.data.metrics["test_loss"])
    order = [next(i for i, row in enumerate(seen["rows"]) if c.info.run_name in row)
             for c in children]
    assert min(order) == order[children.index(best)]  # best first
    if os.environ.get("MLPLAB_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "first_screen.png", DOCS_IMAGE)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (run .ci/install-browser)")
def test_a_single_run_opens_on_its_metrics(store, tmp_path):
    experiment_id, [run] = runs_of(store, SINGLE)
    url, seen = first_screen(store, SINGLE, tmp_path)
    assert url.endswith("&viewStateShareKey=mlplab")
    assert set(METRICS) <= seen["headers"], seen["headers"]
    assert _row_with(seen, run.info.run_name)
    assert repr(run.data.metrics["test_loss"]) in seen["text"]
