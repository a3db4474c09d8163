"""The view the MLflow UI opens on: a comparison of the experiment's runs, with no click.

MLflow 3.17's runs page loads a saved view from an experiment tag,
`mlflow.sharedViewState.<key>`, when its URL carries `viewStateShareKey=<key>`; the "Views"
menu lists such tags by name. The tag holds an envelope `{"name", "createdAt", "updatedAt",
"state"}` whose `state` is the JSON (plain, or deflate-compressed by the UI itself) of the
page's search facets and UI state. What the state sets here:

- columns (`selectedColumns`, `columnOrder`, `columnWidths`): the run name, wide enough to
  read, the monitored metric, the params that vary across the runs, the other final
  `val_*`, `test_*`, `train_*` metrics the runs have, the dataset and the logged models;
- order (`orderByKey`, `orderByAsc`): the monitored metric, best first. The UI nests
  children under their parent only when sorting by start time, and a saved view cannot
  expand a parent (it drops `runsExpanded`); so the runs are grouped by the `mlplab.sweep`
  tag (`groupBy`) that a sweep's parent and children share: each sweep is one expanded
  group named after its parent run, best child first, and runs of no sweep stay in the
  UI's "Additional runs" group;
- charts (`compareRunCharts`): the monitored metric's curves, a parallel-coordinates chart
  of the varying params against it, and the curves of the other final metrics.

A sweep gets a view of its own (key `sweep-<parent id>`: its children only), which is the
link its verdict prints; the experiment's view (key `mlplab`) is rewritten at each sweep's
end and when `mlplab ui` starts, so it follows the runs that arrive. The experiment tag
`mlflow.experiment.primaryMetric.name` names the monitored metric for the UI's own charts.

Pure functions build the state from plain run records; `publish_*` write the tags.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mlplab.tracking.params import varying_params

VIEW_TAG_PREFIX = "mlflow.sharedViewState."
EXPERIMENT_VIEW_KEY = "mlplab"
SWEEP_VIEW_PREFIX = "sweep-"
PRIMARY_METRIC_TAG = "mlflow.experiment.primaryMetric.name"
SWEEP_TAG = "mlplab.sweep"  # the sweep's parent run name, on the parent and every child
KEPT_SWEEP_VIEWS = 10  # older sweeps' views are deleted, so the Views menu stays short
FINAL_METRIC = re.compile(r"^(train|val|test)_")
MAX_PARAM_COLUMNS = 12
MAX_CHART_RUNS = 100
RUN_NAME_COLUMN = "attributes.`Run Name`"
FIXED_COLUMNS = (RUN_NAME_COLUMN, "runDateAndNestInfo", "duration")
TRAILING_COLUMNS = ("attributes.`Dataset`", "attributes.`Models`")
URL_PARAM = "viewStateShareKey"
DEFAULT_UI_PORT = 5000  # `mlplab ui`'s
DEFAULT_UI_BASE = f"http://127.0.0.1:{DEFAULT_UI_PORT}"


@dataclass
class RunRecord:
    """What a view needs of a run: plain values (see `records_from_runs`)."""

    run_id: str
    name: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def records_from_runs(runs) -> list[RunRecord]:
    return [RunRecord(r.info.run_id, r.info.run_name or "", dict(r.data.params),
                      dict(r.data.metrics), dict(r.data.tags)) for r in runs]


def column(kind: str, key: str) -> str:
    """A runs-table column id: `metrics.`test_loss``, `params.`optimizer.lr``."""
    return f"{kind}.`{key}`"


def final_metrics(records: Iterable[RunRecord], monitor: str | None) -> list[str]:
    """The train/val/test metrics the runs logged: the monitored one first, then the
    validation and test ones, then the training ones."""
    keys = {k for r in records for k in r.metrics if FINAL_METRIC.match(k)}
    rank = {"val": 1, "test": 2, "train": 3}
    return sorted(keys, key=lambda k: (k != monitor, rank[k.split("_", 1)[0]], k))


def default_monitor(records: Sequence[RunRecord]) -> tuple[str | None, str]:
    """(metric, mode) the runs were tuned on: the most common `trainer.monitor` and
    `trainer.mode` params (or `objective_metric` tag, minimised), else val_loss or
    test_loss, whichever they have, minimised."""
    def param(r, key):
        value = r.params.get(key)
        return None if value in (None, "", "null") else value

    named = Counter((param(r, "trainer.monitor") or r.tags["objective_metric"],
                     param(r, "trainer.mode") or "min")
                    for r in records
                    if param(r, "trainer.monitor") or r.tags.get("objective_metric"))
    if named:
        return named.most_common(1)[0][0]
    keys = {k for r in records for k in r.metrics}
    for key in ("val_loss", "test_loss"):
        if key in keys:
            return key, "min"
    return (sorted(keys)[0] if keys else None), "min"


def _params_to_show(records: Sequence[RunRecord], first: Sequence[str]) -> list[str]:
    trained = [r for r in records if r.tags.get("mlplab.role") != "sweep"]
    varying = varying_params([r.params for r in trained])
    ordered = [k for k in first if k in varying] + [k for k in varying if k not in first]
    return ordered[:MAX_PARAM_COLUMNS]


def _name_width(records: Iterable[RunRecord]) -> int:
    """Pixels for the run-name column: the longest name (~7.2 px a character, after the
    row's colour dot and indent), within 200-360."""
    longest = max((len(r.name) for r in records), default=10)
    return int(min(360, max(200, 7.2 * longest + 50)))


def _header_width(key: str, least: int = 70) -> int:
    """Pixels for a column headed by `key` (~6.5 px a character, and the sort arrow)."""
    return int(max(least, min(200, 6.5 * len(key) + 30)))


def _chart_base(uuid: str, section: str, kind: str, runs: int, name: str) -> dict:
    return {"uuid": uuid, "type": kind, "runsCountToCompare": runs, "metricSectionId": section,
            "deleted": False, "isGenerated": False, "displayName": name}


def _line_chart(uuid: str, section: str, metric: str, runs: int) -> dict:
    return {**_chart_base(uuid, section, "LINE", runs, metric), "metricKey": metric,
            "selectedMetricKeys": [metric], "lineSmoothness": 0, "xAxisScaleType": "linear",
            "scaleType": "linear", "xAxisKey": "step", "selectedXAxisMetricKey": "",
            "yAxisKey": "metric", "yAxisExpressions": [], "ignoreOutliers": False,
            "useGlobalXaxisKey": True, "useGlobalLineSmoothing": True,
            "range": {"xMin": None, "xMax": None, "yMin": None, "yMax": None}}


def charts(monitor: str | None, metrics: Sequence[str], params: Sequence[str], runs: int
           ) -> tuple[list[dict], list[dict]]:
    """(compareRunCharts, compareRunSections): the monitored metric's curves, the params
    against it in parallel coordinates, then the other metrics' curves."""
    section = "mlplab-metrics"
    runs = max(1, min(runs, MAX_CHART_RUNS))
    cards = []
    if monitor:
        cards.append(_line_chart("mlplab-monitor", section, monitor, runs))
        if params:
            cards.append({**_chart_base("mlplab-parallel", section, "PARALLEL", runs,
                                        f"{monitor} against the varying params"),
                          "selectedParams": list(params), "selectedMetrics": [monitor],
                          "showAllRuns": True})
    cards += [_line_chart(f"mlplab-{m}", section, m, runs) for m in metrics if m != monitor]
    sections = [{"uuid": section, "name": "Model metrics", "display": True,
                 "isReordered": False, "deleted": False, "isGenerated": False}]
    return cards, sections


def view_state(records: Sequence[RunRecord], monitor: str | None, mode: str = "min", *,
               search_filter: str = "", first_params: Sequence[str] = (),
               group_sweeps: bool = True) -> dict:
    """The runs page's state for `records`: see the module docstring."""
    metrics = final_metrics(records, monitor)
    params = _params_to_show(records, first_params)
    # The monitored metric, then the params, then the other metrics: on a narrow screen the
    # params are still in sight (MLflow's column groups split where the kinds alternate).
    first = [column("metrics", m) for m in metrics[:1]]
    selected = (first + [column("params", p) for p in params]
                + [column("metrics", m) for m in metrics[1:]] + list(TRAILING_COLUMNS))
    widths = {RUN_NAME_COLUMN: _name_width(records), "runDateAndNestInfo": 120,
              "duration": 70}
    widths.update({column("metrics", m): _header_width(m, 95) for m in metrics})
    widths.update({column("params", p): _header_width(p) for p in params})
    state = {
        "searchFilter": search_filter, "startTime": "ALL", "lifecycleFilter": "Active",
        "datasetsFilter": [], "modelVersionFilter": "All Runs",
        "orderByKey": column("metrics", monitor) if monitor else "attributes.start_time",
        "orderByAsc": mode != "max" if monitor else False,
        "selectedColumns": selected, "columnOrder": [*FIXED_COLUMNS, *selected],
        "columnWidths": widths, "runsHiddenMode": "FIRST_20_RUNS",
        "hideEmptyCharts": True, "useGroupedValuesInCharts": False, "groupBy": None,
        "groupsExpanded": {},
    }
    if group_sweeps and any(SWEEP_TAG in r.tags for r in records):
        state["groupBy"] = {"aggregateFunction": "max" if mode == "max" else "min",
                            "groupByKeys": [{"mode": "tag", "groupByData": SWEEP_TAG}]}
    cards, sections = charts(monitor, metrics, [p for p in params if _numeric(records, p)],
                             len(records))
    state.update(compareRunCharts=cards, compareRunSections=sections)
    return state


def _numeric(records: Iterable[RunRecord], key: str) -> bool:
    """Whether every value of the param reads as a number (parallel coordinates need it)."""
    values = [r.params[key] for r in records if key in r.params]
    try:
        return bool(values) and all(math.isfinite(float(v)) for v in values)
    except ValueError:
        return False


def envelope(name: str, state: dict, created_ms: int | None = None) -> str:
    """The experiment tag's value for a saved view named `name`."""
    now = int(time.time() * 1000)
    return json.dumps({"name": name, "createdAt": created_ms or now, "updatedAt": now,
                       "state": json.dumps(state)})


def view_url(base: str, experiment_id: str, key: str | None = None) -> str:
    """The runs page of the experiment (in MLflow's machine-learning view), with the view."""
    url = f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    return url + (f"&{URL_PARAM}={key}" if key else "")


def publish(client, experiment_id: str, key: str, name: str, state: dict,
            monitor: str | None = None) -> str:
    """Write the view as the experiment's tag (keeping its creation time); returns `key`."""
    experiment = client.get_experiment(experiment_id)
    client.set_experiment_tag(experiment_id, VIEW_TAG_PREFIX + key,
                              envelope(name, state,
                                       _created_ms(experiment.tags.get(VIEW_TAG_PREFIX + key))))
    if monitor and experiment.tags.get(PRIMARY_METRIC_TAG) != monitor:
        client.set_experiment_tag(experiment_id, PRIMARY_METRIC_TAG, monitor)
    return key


def latest_runs(client, experiment_id: str, limit: int = 1000) -> list:
    """The experiment's newest runs, at most `limit` (one page of MLflow's search)."""
    return list(client.search_runs([experiment_id], max_results=limit,
                                   order_by=["attributes.start_time DESC"]))


def publish_experiment_view(client, experiment_id: str, runs=None) -> str:
    """Rewrite the experiment's comparison view from its latest runs; returns its key."""
    records = records_from_runs(latest_runs(client, experiment_id) if runs is None else runs)
    monitor, mode = default_monitor([r for r in records if r.tags.get("mlplab.role") != "sweep"])
    state = view_state(records, monitor, mode)
    return publish(client, experiment_id, EXPERIMENT_VIEW_KEY, "mlplab: compare runs", state,
                   monitor)


def sweep_view_key(parent_run_id: str) -> str:
    return SWEEP_VIEW_PREFIX + parent_run_id[:12]


def publish_sweep_view(client, parent: dict, children, monitor: str, mode: str,
                       swept: Sequence[str] = ()) -> str:
    """A view of one sweep's children (swept params first); returns its key, after
    deleting the views of all but the newest `KEPT_SWEEP_VIEWS` sweeps."""
    records = records_from_runs(children)
    state = view_state(records, monitor, mode, first_params=list(swept), group_sweeps=False,
                       search_filter=f"tags.`mlflow.parentRunId` = '{parent['run_id']}'")
    state["runsHiddenMode"] = "SHOW_ALL"
    key = publish(client, parent["experiment_id"], sweep_view_key(parent["run_id"]),
                  f"mlplab: {parent.get('run_name') or parent['run_id']}", state)
    _forget_old_sweep_views(client, parent["experiment_id"])
    return key


def _forget_old_sweep_views(client, experiment_id: str) -> None:
    tags = client.get_experiment(experiment_id).tags
    views = sorted((_created_ms(value) or 0, tag) for tag, value in tags.items()
                   if tag.startswith(VIEW_TAG_PREFIX + SWEEP_VIEW_PREFIX))
    for _, tag in views[:-KEPT_SWEEP_VIEWS]:
        client.delete_experiment_tag(experiment_id, tag)


def _created_ms(value: str | None) -> int | None:
    """The creation time in a view tag's envelope (None: no tag, or not an envelope)."""
    try:
        return int(json.loads(value)["createdAt"])
    except (TypeError, ValueError, KeyError):
        return None
