"""The training loop.

For a tiny full-batch network (the 2-4-4-3 regression, a million epochs) an epoch is a few
microseconds of NumPy, so Python overhead per epoch *is* the cost. The loop therefore does
nothing per epoch but the training step and three integer comparisons: metrics, callbacks,
divergence checks, checkpoints and the progress bar happen only at the logging cadence
(`log_every`), and signals just set a flag the loop reads.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from mlplab.constraints import (
    MODE,
    SEED,
    AnyOf,
    Choice,
    Constrained,
    Interval,
    ListOf,
    Nullable,
    check,
)
from mlplab.errors import ConfigError
from mlplab.nn.metrics import METRIC
from mlplab.signals import FitSignals
from mlplab.training.callbacks import Best, EarlyStopping
from mlplab.training.checkpoint import (
    Checkpoint,
    checkpoint_name,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from mlplab.training.evaluation import (
    CLASSIFICATION_TASKS,
    Evaluator,
    RunningMean,
    first_non_finite,
    metric_keys,
    prepare_splits,
    resolve_metrics,
)
from mlplab.training.progress import ProgressBar
from mlplab.training.result import TrainResult

TRAIN_METRICS = ("auto", "pre_update", "post_update", "running")
MAX_POINTS = 1000  # log_every="auto" keeps a run at about this many points per metric
EVENTS = ("on_train_start", "on_epoch_end", "on_checkpoint", "on_train_end")
# "auto" (and None, the same) or an evaluation every N epochs
LOG_EVERY = Nullable(AnyOf(Choice(("auto",)), Interval(int, 1)))


def resolve_log_every(log_every, epochs: int) -> int:
    """An int >= 1, or "auto"/None: the smallest N giving at most ~1000 evaluations."""
    log_every = check("trainer.log_every", log_every, LOG_EVERY)
    if log_every in (None, "auto"):
        return max(1, math.ceil(epochs / MAX_POINTS))
    return log_every


class Trainer(Constrained):
    """Fit `model` with `optimizer` on a `Dataset`; see docs/architecture.md.

    epochs: the last epoch to run (1-based; a resumed fit continues up to it).
    batch_size: None (or >= n_train) for full batch. shuffle: True (a Generator seeded
    from `seed`), "legacy" (the global `np.random` stream, as the arask tutorial), False.
    drop_last: skip a last incomplete batch. log_every: evaluation/logging cadence, an int
    or "auto"; epoch 1, multiples of it and the last epoch are evaluated.
    train_metrics: "pre_update" (train set, weights before the epoch's update; free for
    full batch), "post_update", "running" (mean over the epoch's batches, each measured
    before its update), "auto" (pre_update for full batch, else post_update).
    metrics: extra metric names (e.g. "edenau_loss"); classifiers always get accuracy.
    monitor/mode: the metric behind best_epoch, reduce_on_plateau and (by default) early
    stopping; default val_loss, else test_loss, else train_loss.
    schedule: an `mlplab.nn.Schedule` (lr set before every epoch) or None.
    early_stopping: EarlyStopping, a mapping of its arguments, or None.
    checkpoint_every: write a checkpoint every N epochs (None: only when killed), into
    checkpoint_dir (default: a temporary directory living as long as the fit).
    progress: "auto" (a bar when stderr is a terminal), True or False.
    `constraints` holds the rules of these arguments (the config's trainer keys use them).
    """

    prefix = "trainer"
    constraints = {
        "epochs": Interval(int, 1),
        "batch_size": Nullable(Interval(int, 1)),
        "shuffle": Choice((True, False, "legacy")),
        "seed": SEED,
        "log_every": LOG_EVERY,
        "checkpoint_every": Nullable(Interval(int, 1)),
        "train_metrics": Choice(TRAIN_METRICS),
        "metrics": ListOf(METRIC),
        "mode": MODE,
    }

    def __init__(self, model, optimizer, *, epochs: int, batch_size: int | None = None,
                 shuffle=True, seed: int = 0, log_every="auto", schedule=None,
                 early_stopping=None, checkpoint_every: int | None = None, callbacks=(),
                 train_metrics: str = "auto", metrics=(), monitor: str | None = None,
                 mode: str = "min", drop_last: bool = False, checkpoint_dir=None,
                 progress="auto", handle_signals: bool = True):
        self.model, self.optimizer = model, optimizer
        self.epochs = self.checked("epochs", epochs)
        self.batch_size = self.checked("batch_size", batch_size)
        self.shuffle = self.checked("shuffle", shuffle)
        self.seed, self.drop_last = self.checked("seed", seed), bool(drop_last)
        self.log_every = resolve_log_every(log_every, self.epochs)
        self.schedule = None if schedule is None or schedule.name == "constant" else schedule
        self.early_stopping = EarlyStopping.from_config(early_stopping)
        self.checkpoint_every = self.checked("checkpoint_every", checkpoint_every)
        self.train_metrics = self.checked("train_metrics", train_metrics)
        self.extra_metrics = tuple(self.checked("metrics", list(metrics or ())))
        self.monitor, self.mode = monitor, self.checked("mode", mode)
        self.callbacks = list(callbacks or ())
        self.checkpoint_dir, self.progress = checkpoint_dir, progress
        self.handle_signals = handle_signals
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.epoch = 0  # the last completed epoch
        self.result: TrainResult | None = None
        self._stop_reason: str | None = None
        self._signal: str | None = None
        self._halt = False  # the one flag the epoch loop reads

    # ------------------------------------------------------------------ control from outside
    def request_stop(self, reason: str) -> None:
        """End training after the current epoch with status FINISHED (early stopping,
        pruning); the first reason given is kept."""
        if self._stop_reason is None:
            self._stop_reason = str(reason)
        self._halt = True

    def _on_signal(self, name: str) -> None:
        self._signal = name
        self._halt = True

    # -------------------------------------------------------------------------- fitting
    def fit(self, dataset, *, resume_from=None, history=None) -> TrainResult:
        """Train on `dataset`; `resume_from` is a checkpoint path to continue from.

        A checkpoint holds no metric history (it would grow with every evaluation): the
        history of the fit it continues comes as `history`, {key: [(epoch, value), ...]},
        from wherever those evaluations were recorded (the run's MLflow metrics). Points
        after the checkpoint's last evaluation are dropped: the resumed fit makes them
        again. Without it the resumed fit's history starts at the checkpoint.
        """
        started = time.perf_counter()
        splits = prepare_splits(dataset, self.model)
        self._setup(dataset, splits)
        if resume_from is not None:
            self._resume(resume_from, splits["train"].n, history or {})
        hooks = {e: [getattr(cb, e) for cb in self.callbacks if hasattr(cb, e)] for e in EVENTS}
        self._hooks = hooks
        for hook in hooks["on_train_start"]:
            hook(self)
        with tempfile.TemporaryDirectory(prefix="mlplab-ckpt-") as scratch, \
                FitSignals(self._on_signal) if self.handle_signals else contextlib.nullcontext(), \
                np.errstate(over="ignore", invalid="ignore"):
            self._ckpt_dir = Path(self.checkpoint_dir or scratch)
            self._ckpt_dir.mkdir(parents=True, exist_ok=True)
            bar = ProgressBar(self.epochs, self.epoch, self.progress)
            try:
                self._loop(splits, bar)
                result = self._finish(splits)
            finally:
                bar.close()
        result.seconds = time.perf_counter() - started
        self.result = result  # readable by on_train_end hooks
        for hook in hooks["on_train_end"]:
            hook(result.status, result.reason)
        return result

    def _setup(self, dataset, splits) -> None:
        self._classifier = dataset.task in CLASSIFICATION_TASKS
        self._evaluator = Evaluator(self.model, resolve_metrics(
            self.extra_metrics, self._classifier, dataset.task))
        n = splits["train"].n
        self._full_batch = self.batch_size is None or self.batch_size >= n
        if self.train_metrics == "auto":
            self._train_mode = "pre_update" if self._full_batch else "post_update"
        else:
            self._train_mode = self.train_metrics
        if self.monitor is None:
            self.monitor = ("val_loss" if "val" in splits
                            else "test_loss" if "test" in splits else "train_loss")
        es = self.early_stopping
        reported = Choice(metric_keys(splits, self._evaluator.metrics), noun="metric")
        check("trainer.monitor", self.monitor, reported)
        if es is not None:
            es.start(self.monitor, self.mode)
            check("trainer.early_stopping.monitor", es.key, reported)
        self._best = Best(self.mode)
        self._best_metrics: dict = {}
        self.history, self.epoch, self.result = {}, 0, None  # a resume refills them
        self._rng = np.random.default_rng([self.seed, 1]) if self.shuffle is True else None
        self._order = np.arange(n)
        self.metrics: dict[str, float] = {}
        self._fresh_metric: float | None = None
        self._diverged: str | None = None
        self._checkpointed: set[int] = set()
        self._evaluated_through: int | None = None  # a resumed fit's, until it evaluates
        self._stop_reason = self._signal = None
        self._halt = False

    # ---------------------------------------------------------------------- epoch loop
    def _loop(self, splits, bar) -> None:
        train = splits["train"]
        X, Y, model, optimizer = train.X, train.Y, self.model, self.optimizer
        step = model.train_step
        schedule = self.schedule
        every, ckpt_every, last = self.log_every, self.checkpoint_every, self.epochs
        batches = None if self._full_batch else self._batch_plan(train)
        epoch = self.epoch
        next_eval = min(self._next_multiple(epoch, every, first=True), last)
        next_ckpt = self._next_multiple(epoch, ckpt_every) if ckpt_every else 0
        for epoch in range(self.epoch + 1, last + 1):
            if schedule is not None:
                optimizer.lr = schedule.lr_at(epoch - 1, self._fresh_metric)
                self._fresh_metric = None
            if epoch != next_eval:
                if batches is None:
                    step(X, Y, optimizer)
                else:
                    for Xb, Yb in batches():
                        step(Xb, Yb, optimizer)
            else:
                train_metrics = self._train_epoch(train, batches)
                self.epoch = epoch
                if epoch == next_ckpt and epoch % every and epoch != 1:
                    # The end-of-run evaluation is one a longer run would not make; a
                    # checkpoint taken after it would feed it to the resumed schedule and
                    # early stopping, so it is taken before.
                    self._checkpoint(epoch)
                self._evaluate(epoch, splits, train_metrics, bar)
                next_eval = min(epoch + every - epoch % every, last)
            self.epoch = epoch
            if epoch == next_ckpt:
                self._checkpoint(epoch)
                next_ckpt += ckpt_every
            if self._halt:
                break

    @staticmethod
    def _next_multiple(epoch: int, every: int, first: bool = False) -> int:
        if first and epoch == 0:
            return 1
        return epoch + every - epoch % every

    def _batch_plan(self, train):
        """A function yielding this epoch's (X, Y) batches, reshuffled at each call."""
        n, size = train.n, self.batch_size
        stop = n - n % size if self.drop_last else n
        X, Y = train.X, train.Y
        if not self.shuffle:
            fixed = [(np.ascontiguousarray(X[:, s:s + size]),
                      np.ascontiguousarray(Y[:, s:s + size])) for s in range(0, stop, size)]
            return lambda: fixed

        def shuffled():
            # Composing permutations (order = order[perm]) is what reshuffling the data
            # arrays in place each epoch does, so the legacy stream replays the tutorial.
            if self._rng is None:
                perm = np.arange(n)
                np.random.shuffle(perm)  # noqa: NPY002 (the legacy stream, on purpose)
            else:
                perm = self._rng.permutation(n)
            self._order = order = self._order[perm]
            for s in range(0, stop, size):
                idx = order[s:s + size]
                yield X.take(idx, axis=1), Y.take(idx, axis=1)

        return shuffled

    def _train_epoch(self, train, batches) -> dict:
        """One epoch at an evaluation epoch: also measures the train metrics."""
        model, optimizer, evaluator = self.model, self.optimizer, self._evaluator
        mode = self._train_mode
        if batches is None:
            if mode == "post_update":
                model.train_step(train.X, train.Y, optimizer)
                return evaluator.evaluate(train)
            loss = model.train_step(train.X, train.Y, optimizer, return_loss=True)
            return evaluator.from_output("train", loss, model.last_output, train.Y)
        measured = evaluator.evaluate(train) if mode == "pre_update" else None
        running = RunningMean() if mode == "running" else None
        for Xb, Yb in batches():
            if running is None:
                model.train_step(Xb, Yb, optimizer)
            else:
                loss = model.train_step(Xb, Yb, optimizer, return_loss=True)
                running.add(evaluator.from_output("train", loss, model.last_output, Yb),
                            Xb.shape[1])
        if running is not None:
            return running.means()
        return measured if measured is not None else evaluator.evaluate(train)

    def _evaluate(self, epoch: int, splits, train_metrics: dict, bar) -> None:
        metrics = dict(train_metrics)
        for name, split in splits.items():
            if name != "train":
                metrics.update(self._evaluator.evaluate(split))
        self.metrics = metrics
        for key, value in metrics.items():
            self.history.setdefault(key, []).append((epoch, value))
        bad = first_non_finite(metrics)
        if bad is not None:
            self._diverged = f"{bad[0]} is {bad[1]} at epoch {epoch}"
            self._halt = True
        monitored = metrics.get(self.monitor, math.nan)
        self._fresh_metric = monitored if math.isfinite(monitored) else None
        if self._best.update(epoch, monitored):
            self._best_metrics = metrics
        if self.early_stopping is not None:
            reason = self.early_stopping.update(epoch, metrics, self.model)
            if reason is not None:
                self.request_stop(reason)
        bar.update(epoch, metrics)
        for hook in self._hooks["on_epoch_end"]:
            hook(epoch, metrics)

    # ----------------------------------------------------------------- ending, checkpoints
    def _finish(self, splits) -> TrainResult:
        diverged = self._diverged
        restored = False
        checkpoint = None
        if diverged:
            status, reason = "FAILED", diverged
        elif self._signal is not None:
            status, reason = "KILLED", f"interrupted by {self._signal} after epoch {self.epoch}"
            checkpoint = str(self._checkpoint(self.epoch))
        else:
            status, reason = "FINISHED", self._stop_reason
            es = self.early_stopping
            restored = es is not None and es.restore(self.model, self._last_eval())
        best = self._best
        return TrainResult(status=status, reason=reason, epochs_run=self.epoch,
                           best_epoch=best.epoch, metrics=dict(self.metrics),
                           history=self.history, stop_reason=self._stop_reason,
                           monitor=self.monitor, mode=self.mode, best_value=best.value,
                           best_metrics=dict(self._best_metrics), restored_best_weights=restored,
                           checkpoint=checkpoint)

    def _last_eval(self) -> int | None:
        points = self.history.get(self.monitor)
        return points[-1][0] if points else self._evaluated_through

    def _checkpoint(self, epoch: int) -> Path:
        path = self._ckpt_dir / checkpoint_name(epoch)
        if epoch not in self._checkpointed:
            self._checkpointed.add(epoch)
            save_checkpoint(path, self._state(epoch))
            for hook in self._hooks["on_checkpoint"]:
                hook(epoch, path)
        return path

    def _state(self, epoch: int) -> Checkpoint:
        """What a resumed fit needs, O(parameters + optimizer state): no metric history
        (see `fit`), the sample order only where shuffled mini-batches compose it."""
        arrays = {}
        if self.shuffle and not self._full_batch:
            arrays["order"] = self._order.astype(_index_dtype(self._order.size))
        es = self.early_stopping
        if es is not None and es.best_weights is not None:
            arrays.update({f"best/{k}": v for k, v in es.best_weights.items()})
        meta = {"rng": rng_state(self._rng) if self.shuffle else None,
                "schedule": self.schedule.state_dict() if self.schedule else None,
                "best": self._best.state(), "best_metrics": self._best_metrics,
                "early_stopping": es.state_dict() if es is not None else None,
                "evaluated_through": self._last_eval(), "metrics": self.metrics,
                "stop": self._stop_reason,
                "fresh_metric": self._fresh_metric}
        return Checkpoint(epoch, self.model.state_dict(), self.optimizer.state_dict(),
                          meta, arrays)

    def _resume(self, path, n_train: int, history: dict) -> None:
        state = load_checkpoint(path)
        if state.epoch >= self.epochs:
            raise ConfigError(f"trainer.epochs: the checkpoint {Path(path).name} is at epoch "
                              f"{state.epoch}; epochs must be larger to train further")
        _check_fits(path, state, self.model.state_dict(), self.optimizer.state_dict(), n_train)
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        meta = state.meta
        if meta.get("rng") is not None and self.shuffle:
            set_rng_state(self._rng, meta["rng"])
        if self.schedule is not None and meta.get("schedule") is not None:
            self.schedule.load_state_dict(meta["schedule"])
        if "order" in state.arrays:
            self._order = state.arrays["order"].astype(np.int64)
        self._best.load(meta["best"])
        self._best_metrics = meta.get("best_metrics") or {}
        if self.early_stopping is not None and meta.get("early_stopping"):
            best = {k[5:]: v for k, v in state.arrays.items() if k.startswith("best/")}
            self.early_stopping.load_state_dict(meta["early_stopping"], best)
        through = meta.get("evaluated_through")
        self._evaluated_through = through
        self.history = {key: [(int(e), float(v)) for e, v in points
                              if through is not None and e <= through]
                        for key, points in history.items()}
        self.history = {key: points for key, points in self.history.items() if points}
        self.metrics = meta.get("metrics") or {}
        self._fresh_metric = meta.get("fresh_metric")
        self.epoch = state.epoch


def _index_dtype(n: int):
    """The smallest unsigned integer type that holds the indices 0..n-1."""
    return np.uint16 if n <= 2**16 else np.uint32 if n <= 2**32 else np.uint64


def _few(names) -> str:
    names = sorted(names)
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "") \
        if names else "nothing"


def _check_fits(path, state: Checkpoint, model: dict, optimizer: dict, n_train: int) -> None:
    """Refuse, as one line, a checkpoint this fit cannot continue: another model (names,
    shapes or dtype of its state), another optimizer, or another training set size. The
    job checks the run's config first and names the key; this catches what it cannot."""
    where = "trainer.resume: " + "/".join(Path(path).parts[-3:])  # <run id>/checkpoints/…
    for kind, saved, live in (("model", state.model, model),
                              ("optimizer", state.optimizer, optimizer)):
        if set(saved) != set(live):
            raise ConfigError(f"{where}: its {kind} state does not match this {kind}'s "
                              f"(only in the checkpoint: {_few(set(saved) - set(live))}; only "
                              f"here: {_few(set(live) - set(saved))}); valid choices: the "
                              "architecture, optimizer and dataset the run was trained with")
        for name, value in live.items():
            value, stored = np.asarray(value), saved[name]
            if stored.shape != value.shape or (kind == "model" and stored.dtype != value.dtype):
                raise ConfigError(f"{where}: {kind} state {name} is {stored.dtype}"
                                  f"{list(stored.shape)}, this {kind}'s {value.dtype}"
                                  f"{list(value.shape)}; valid choices: the architecture, "
                                  "dtype and dataset the run was trained with")
    order = state.arrays.get("order")
    if order is not None and order.size != n_train:
        raise ConfigError(f"{where}: the run trained on {order.size} samples, this dataset "
                          f"has {n_train}; valid choices: the dataset the run was trained with")
