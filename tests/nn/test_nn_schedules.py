import math

import pytest

from mlplab.errors import ConfigError
from mlplab.nn import SCHEDULES, get_schedule


def test_every_schedule_is_tested():
    assert set(SCHEDULES) == {"constant", "step", "exponential", "cosine", "reduce_on_plateau"}


def test_constant():
    s = get_schedule("constant", 0.3)
    assert [s.lr_at(e, metric=1.0) for e in range(5)] == [0.3] * 5


def test_step_decays_every_step_size_epochs():
    s = get_schedule("step", 0.5, step_size=3, gamma=0.1)
    expected = [0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005]
    assert [s.lr_at(e) for e in range(7)] == pytest.approx(expected, rel=1e-12)


def test_exponential():
    s = get_schedule("exponential", 0.2, gamma=0.5)
    assert [s.lr_at(e) for e in range(4)] == pytest.approx([0.2, 0.1, 0.05, 0.025], rel=1e-12)


def test_cosine_with_warmup():
    base, low, total, warm = 1.0, 0.1, 10, 2
    s = get_schedule("cosine", base, epochs=total, min_lr=low, warmup_epochs=warm)
    assert s.lr_at(0) == pytest.approx(0.5) and s.lr_at(1) == pytest.approx(1.0)
    for e in range(warm, total + 3):
        t = min(e - warm, total - warm) / (total - warm)
        expected = low + 0.5 * (base - low) * (1 + math.cos(math.pi * t))
        assert s.lr_at(e) == pytest.approx(expected, rel=1e-12)
    assert s.lr_at(warm) == pytest.approx(base) and s.lr_at(total + 5) == pytest.approx(low)
    plain = get_schedule("cosine", 2.0, epochs=4)
    assert [plain.lr_at(e) for e in range(5)] == pytest.approx(
        [2.0, 1 + math.sqrt(0.5), 1.0, 1 - math.sqrt(0.5), 0.0], abs=1e-12)


def test_reduce_on_plateau_waits_patience_epochs_then_reduces():
    s = get_schedule("reduce_on_plateau", 1.0, factor=0.5, patience=2, min_delta=0.01,
                     min_lr=0.2)
    assert s.lr_at(0) == 1.0  # nothing observed yet
    # improvements, then stalls (an improvement smaller than min_delta is a stall)
    metrics = [1.0, 0.9, 0.895, 0.9, 0.95, 0.89, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    lrs = [s.lr_at(epoch, metric=m) for epoch, m in enumerate(metrics, start=1)]
    # best 0.9 at epoch 2; stalls at 3, 4, 5 -> third stall (> patience 2) halves at epoch 5
    assert lrs[:5] == [1.0, 1.0, 1.0, 1.0, 0.5]
    # 0.89 is not better than 0.9 - 0.01 -> stall 1; 0.8 improves; then stalls 1, 2, 3 -> halve
    assert lrs[5:10] == [0.5, 0.5, 0.5, 0.5, 0.25]
    assert lrs[10:] == [0.25, 0.25, 0.2, 0.2]  # floored at min_lr
    assert s.lr_at(len(metrics), metric=100.0) == 0.2  # same epoch again: no new observation


def test_reduce_on_plateau_max_mode_and_resume():
    s = get_schedule("reduce_on_plateau", 1.0, factor=0.1, patience=0, mode="max")
    assert s.lr_at(1, metric=0.5) == 1.0
    assert s.lr_at(2, metric=0.6) == 1.0
    state = s.state_dict()
    twin = get_schedule("reduce_on_plateau", 1.0, factor=0.1, patience=0, mode="max")
    twin.load_state_dict(state)
    assert s.lr_at(3, metric=0.55) == twin.lr_at(3, metric=0.55) == pytest.approx(0.1)


@pytest.mark.parametrize(("name", "kwargs", "fragment"), [
    ("linear", {}, "unknown schedule 'linear'; valid choices: constant, cosine, exponential"),
    ("step", {"step_size": 0}, "schedule.step_size"),
    ("step", {"gamma": -1.0}, "schedule.gamma"),
    ("cosine", {"epochs": 5, "warmup_epochs": 5}, "schedule.warmup_epochs"),
    ("cosine", {"T_max": 5}, "no parameter 'T_max'"),
    ("reduce_on_plateau", {"mode": "up"}, "unknown mode 'up'"),
    ("reduce_on_plateau", {"factor": 1.5}, "schedule.factor"),
])
def test_invalid_schedules_raise_one_line_config_error(name, kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        get_schedule(name, 0.1, **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)
