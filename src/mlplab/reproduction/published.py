"""The published numbers of the three tutorials and how a logged run is judged against them.

Each `Check` reads what a finished run logged (through a `run` object with `at(key, step)`,
`final(key)` and `predict_raw(inputs)`) and returns what to print as "ours" and whether it
matches. Tolerances follow what each tutorial published: edenau printed 4 decimals during
training and full doubles at the end, Skalski an exact accuracy on 100 test points, arask
a rounded "about 85%".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EDENAU_PRINT_EPOCHS = tuple(range(100_000, 1_000_001, 100_000))
EDENAU_TEST_LOSS = 0.3194238845483295
EDENAU_PREDICT_INPUT = np.array([[30, 70], [70, 30], [3, 5], [888, 122]], dtype=float).T
EDENAU_PREDICT_OUTPUT = np.array([
    [98.56378114, 102.63221611, 5.56349031, 562.15335048],
    [-26.25088759, 14.80155747, 21.3245024, 221.60597885],
    [48.08520947, 25.18205121, 15.71597463, -64.01423955],
])
ARASK_ACCURACY, ARASK_TOLERANCE = 0.85, 0.02


@dataclass(frozen=True)
class Check:
    metric: str
    published: str
    measure: Callable[[object], tuple[str, bool]]  # run -> (ours as text, matches)


@dataclass(frozen=True)
class Tutorial:
    preset: str
    title: str
    checks: tuple[Check, ...]
    needs_mnist: bool = False
    own_code_time: str = "-"  # the tutorial's own code, run as published on the dev machine


def _four_decimals(run, epochs) -> list[str]:
    return [f"{run.at('train_edenau_loss', e):.4f}" for e in epochs]


def _edenau_first_print(run) -> tuple[str, bool]:
    (shown,) = _four_decimals(run, EDENAU_PRINT_EPOCHS[:1])
    return shown, shown == "0.3502"


def _edenau_later_prints(run) -> tuple[str, bool]:
    shown = _four_decimals(run, EDENAU_PRINT_EPOCHS[1:])
    same = len(set(shown)) == 1
    text = f"{shown[0]} ×{len(shown)}" if same else ", ".join(shown)
    return text, same and shown[0] == "0.3450"


def _edenau_test_loss(run) -> tuple[str, bool]:
    value = run.final("test_edenau_loss")
    return repr(value), abs(value - EDENAU_TEST_LOSS) <= 1e-8


def _edenau_predict(run) -> tuple[str, bool]:
    gap = float(np.max(np.abs(run.predict_raw(EDENAU_PREDICT_INPUT) - EDENAU_PREDICT_OUTPUT)))
    return f"max |diff| {gap:.1e}", gap <= 1e-6


def _accuracy_equal(key: str, published: float):
    def measure(run) -> tuple[str, bool]:
        value = run.final(key)
        return f"{value:g}", abs(value - published) < 1e-9

    return measure


def _accuracy_near(key: str):
    def measure(run) -> tuple[str, bool]:
        value = run.final(key)
        return f"{value:.4f}", abs(value - ARASK_ACCURACY) <= ARASK_TOLERANCE

    return measure


TUTORIALS: tuple[Tutorial, ...] = (
    Tutorial("edenau_regression", "edenau: sum/diff regression, 2-4-4-3, 1M epochs", (
        Check("train loss printed at epoch 100k", "0.3502", _edenau_first_print),
        Check("train loss printed at 200k..1M", "0.3450 ×9", _edenau_later_prints),
        Check("test loss (±1e-8)", repr(EDENAU_TEST_LOSS), _edenau_test_loss),
        Check("predict([[30,70],[70,30],[3,5],[888,122]].T)", "published 3x4 matrix (±1e-6)",
              _edenau_predict),
    ), own_code_time="~10 min"),
    Tutorial("skalski_circles", "Skalski: circles, 2-50-100-200-100-50-1, 5000 epochs", (
        Check("test accuracy", "1", _accuracy_equal("test_accuracy", 1.0)),
    )),
    Tutorial("skalski_moons", "Skalski: moons, 2-25-50-50-25-1, 10,000 epochs", (
        Check("test accuracy", "0.98", _accuracy_equal("test_accuracy", 0.98)),
    )),
    Tutorial("arask_mnist", "arask: MNIST, 784-256-128-10, 20 epochs", (
        Check("train accuracy (running mean, ±0.02)", "~0.85", _accuracy_near("train_accuracy")),
        Check("test accuracy (±0.02)", "~0.85", _accuracy_near("test_accuracy")),
    ), needs_mnist=True, own_code_time="~25 min"),
)
TUTORIAL_NAMES = tuple(t.preset for t in TUTORIALS)
