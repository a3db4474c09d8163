"""The rule types of `mlplab.constraints` and the one check the engine and the config share."""

import numpy as np
import pytest

from mlplab.constraints import (
    FLOAT_DTYPE,
    AnyOf,
    Choice,
    ConstraintError,
    Interval,
    ListOf,
    Nullable,
    check,
)
from mlplab.errors import ConfigError

UNIT = Interval(float, 0, 1)  # [0, 1)


@pytest.mark.parametrize(("constraint", "inside", "outside"), [
    (Interval(float, 0, 1, closed="left"), [0, 0.5, np.float32(0.25)], [1, -1e-12, 1.5]),
    (Interval(float, 0, 1, closed="right"), [1, 1e-12], [0, 1.0000001]),
    (Interval(float, 0, 1, closed="both"), [0, 1], [-0.1, 1.1]),
    (Interval(float, 0, 1, closed="neither"), [0.5], [0, 1]),
    (Interval(float, 0, closed="neither"), [1e-300, 1e300], [0, -1, float("inf")]),
    (Interval(float), [-5, 0, 7.5], [float("nan"), float("inf"), "1", None]),
    (Interval(int, 1), [1, 10**12, np.int64(3)], [0, 1.0, 2.5, True, np.bool_(True), "2"]),
    (Interval(int, 0, 2**32), [0, 2**32 - 1], [-1, 2**32]),
])
def test_intervals_accept_what_lies_inside_their_bounds(constraint, inside, outside):
    assert all(constraint.accepts(v) for v in inside), inside
    assert not any(constraint.accepts(v) for v in outside), outside


@pytest.mark.parametrize(("constraint", "text"), [
    (Interval(float, 0, closed="neither"), "a finite number > 0"),
    (Interval(float, 0), "a finite number >= 0"),
    (Interval(float, None, 10, closed="right"), "a finite number <= 10"),
    (Interval(float), "a finite number"),
    (UNIT, "a number in [0, 1)"),
    (Interval(float, 0, 1, closed="neither"), "a number in (0, 1)"),
    (Interval(int, 1), "an integer >= 1"),
    (Interval(int, 0, 2**32), "an integer in [0, 2**32)"),
    (Nullable(Interval(int, 1)), "an integer >= 1 or null"),
    (Nullable(AnyOf(Choice(("auto",)), Interval(int, 1))), "'auto', an integer >= 1 or null"),
    (ListOf(Interval(int, 1), example="[64, 32]"), "a list of integers >= 1, e.g. [64, 32]"),
    (ListOf(UNIT, length=2), "two numbers in [0, 1)"),
])
def test_each_rule_reads_as_the_end_of_must_be(constraint, text):
    assert constraint.describe() == text


def test_a_failed_check_is_one_line_naming_the_value_and_the_rule():
    with pytest.raises(ConstraintError) as info:
        check("momentum", 1.5, UNIT)
    assert str(info.value) == "momentum: invalid value 1.5; must be a number in [0, 1)"
    assert isinstance(info.value, ConfigError)  # the CLI's exit 2
    assert (info.value.name, info.value.value, info.value.constraint) == ("momentum", 1.5, UNIT)


def test_reals_come_back_as_python_floats_so_float32_arrays_stay_float32():
    value = check("lr", np.float64(0.5), Interval(float, 0, closed="neither"))
    assert type(value) is float
    assert (np.ones(3, np.float32) * value).dtype == np.float32
    assert type(check("epochs", np.int64(3), Interval(int, 1))) is int


def test_choices_tell_flags_from_numbers_and_say_what_is_valid():
    shuffle = Choice((True, False, "legacy"))
    assert shuffle.accepts(True) and shuffle.accepts("legacy")
    assert not shuffle.accepts(1) and not shuffle.accepts(0.0) and not shuffle.accepts("yes")
    with pytest.raises(ConfigError) as info:
        check("shuffle", "yes", shuffle)
    assert str(info.value) == "shuffle: unknown value 'yes'; valid choices: false, legacy, true"
    mode = Choice(("min", "max"), noun="mode")
    with pytest.raises(ConfigError, match=r"^mode: unknown mode 'up'; valid choices: max, min$"):
        check("mode", "up", mode)
    with pytest.raises(ConfigError, match=r"^trainer\.mode: unknown value 'up'"):
        check("trainer.mode", "up", mode, noun="value")  # the config's wording


def test_dtypes_by_name_or_numpy_type():
    assert check("dtype", "float32", FLOAT_DTYPE) == np.dtype(np.float32)
    assert check("dtype", np.float64, FLOAT_DTYPE) == np.dtype(np.float64)
    assert check("dtype", np.dtype("float32"), FLOAT_DTYPE) == np.dtype(np.float32)
    for bad in ("float16", np.int32, "f4", 32):
        assert not FLOAT_DTYPE.accepts(bad), bad
    with pytest.raises(ConfigError, match=r"^dtype: unknown dtype 'float16'; valid choices: "
                                          r"float32, float64$"):
        check("dtype", "float16", FLOAT_DTYPE)


def test_lists_check_every_item_and_their_length():
    sizes = ListOf(Interval(int, 1), example="[64, 32]")
    assert sizes.accepts([]) and sizes.accepts((3, 4)) and check("hidden", (3, 4), sizes) == [3, 4]
    assert not sizes.accepts([3, 0]) and not sizes.accepts("34") and not sizes.accepts(3)
    with pytest.raises(ConfigError) as info:
        check("hidden", [16, 0], sizes)
    assert str(info.value) == ("hidden: invalid value [16, 0]; must be a list of integers "
                               ">= 1, e.g. [64, 32]")
    pair = ListOf(UNIT, length=2)
    assert pair.accepts([0.9, 0.999]) and not pair.accepts([0.9]) and not pair.accepts([0.9, 1])


def test_a_list_of_names_reports_the_unknown_one():
    names = ListOf(Choice(("accuracy", "edenau_loss"), noun="metric"))
    with pytest.raises(ConfigError) as info:
        check("metrics", ["accuracy", "f1"], names)
    assert str(info.value) == "metrics: unknown metric 'f1'; valid choices: accuracy, edenau_loss"


def test_null_only_where_a_rule_allows_it():
    assert check("clip_norm", None, Nullable(Interval(float, 0, closed="neither"))) is None
    assert not Interval(float, 0).accepts(None)
    log_every = Nullable(AnyOf(Choice(("auto",)), Interval(int, 1)))
    assert [log_every.accepts(v) for v in ("auto", 3, None, 0, "often")] == [
        True, True, True, False, False]
