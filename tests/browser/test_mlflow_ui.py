"""A real sweep seen in the real MLflow UI through a real browser.

`mlplab train -m` writes a small sweep into a temporary store, `mlplab ui` serves it and
prints the runs-table URL, and headless Chromium (Debian's, driven by playwright) opens
that URL: the sweep's parent row must expand to its children, and their monitored metric
must read as the store holds it. Skips only when no Chromium binary or no playwright is
available (`.ci/install-browser` installs Chromium).

Set MLPLAB_UPDATE_SCREENSHOTS=1 to refresh docs/images/mlflow_ui_sweep.png from the run.
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
EXPERIMENT = "quick_moons"
SWEPT = "optimizer.lr"
LEARNING_RATES = ("0.03", "0.3")
SEEDS = ("0", "1")


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory):
    """A store holding one sweep of quick_moons: two learning rates x two seeds."""
    root = tmp_path_factory.mktemp("ui_store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    command = [sys.executable, "-m", "mlplab", "train", "-m", f"experiment={EXPERIMENT}",
               f"{SWEPT}={','.join(LEARNING_RATES)}", f"seed={','.join(SEEDS)}",
               "logger.plots=false", "logger.log_model=false",
               f"hydra.sweep.dir={root / 'lr_sweep'}"]
    done = subprocess.run(command, env=venv_env({"MLFLOW_TRACKING_URI": uri}), cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, uri


def stored_sweep(uri):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == len(LEARNING_RATES) * len(SEEDS)
    return experiment.experiment_id, parents[0], children


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (run .ci/install-browser)")
def test_sweep_children_and_metrics_show_in_the_ui(sweep_store, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    root, uri = sweep_store
    experiment_id, parent, children = stored_sweep(uri)
    port = free_port()
    command = [sys.executable, "-m", "mlplab", "ui", "--port", str(port),
               "--tracking-uri", uri, "--experiment", EXPERIMENT]
    log_path = tmp_path / "ui.log"
    with background_process(command, log_path=log_path) as server:
        url = wait_for_output(r"http://127\.0\.0\.1:\d+/\S+", server, 180, log_path).group(0)
        assert url.endswith(f"#/experiments/{experiment_id}/runs?workflowType=machine_learning")
        with sync_api.sync_playwright() as playwright:
            browser = launch_browser(playwright)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 500})
                page.set_default_timeout(90_000)
                text = show_sweep(page, url, parent.info.run_name,
                                  [c.info.run_name for c in children])
                page.screenshot(path=str(tmp_path / "mlflow_ui_sweep.png"))
            finally:
                browser.close()
    for child in children:
        assert child.info.run_name in text
        assert repr(child.data.metrics["test_loss"]) in text, child.data.metrics
    if os.environ.get("MLPLAB_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "mlflow_ui_sweep.png", DOCS_IMAGE)


def show_sweep(page, url: str, parent_name: str, child_names) -> str:
    """Open the runs table, expand the sweep, show its metric and param columns; return
    the page's text. Selectors are those of MLflow 3.17's UI."""
    page.goto(url)
    page.get_by_text(parent_name, exact=True).wait_for()
    assistant = page.locator('button[data-component-id="mlflow.assistant.chat_panel.close"]')
    if assistant.count():  # the assistant side panel would squeeze the table
        assistant.first.click()
    # Children are collapsed under their parent: the +/- button in the run-name cell.
    page.locator('button[data-component-id*="runnamecellrenderer"]').first.click()
    for name in child_names:
        page.get_by_text(name, exact=True).wait_for()
    # Metrics and params start hidden; the column picker shows them (and hides the rest).
    page.get_by_role("button", name="Columns", exact=True).click()
    picker = page.locator('[data-component-type="popover"]')
    picker.locator('[title^="Metrics ("]').first.click()  # every metric
    search = page.get_by_placeholder("Search columns")
    for toggle in (SWEPT, "Dataset", "Source", "Models"):  # the swept param on, empty
        search.fill(toggle)  # columns off; searching keeps the long param list short
        picker.get_by_text(toggle, exact=True).first.click()
    search.fill("")
    page.keyboard.press("Escape")
    page.get_by_text("test_loss", exact=True).first.wait_for()
    widen_run_names(page)
    return page.inner_text("body")


def widen_run_names(page, pixels=180) -> None:
    """Drag the run-name column wider so the screenshot shows whole names (cosmetic)."""
    handle = page.locator('.ag-header-cell[col-id*="Run Name"] .ag-header-cell-resize').first
    box = handle.bounding_box(timeout=5_000)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    handle.hover()
    page.mouse.down()
    for dx in range(0, pixels + 1, 10):  # small steps: the grid tracks pointer moves
        page.mouse.move(x + dx, y)
    page.mouse.up()
