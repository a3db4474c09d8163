"""conf/dataset/*.yaml agree with the loaders: same keys, same defaults, and they load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlplab.data import DATASETS, NULLABLE_KEYS, dataset_defaults, load_dataset

CONF = Path(__file__).resolve().parents[2] / "conf" / "dataset"
SHARED_KEYS = ("test_size", "split", "stratify", "split_seed", "val_size", "scale")


def config(name: str) -> dict:
    return yaml.safe_load((CONF / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_config_file_lists_every_key_with_the_loader_default(name):
    content = config(name)
    assert next(iter(content)) == "name" and content["name"] == name
    assert content == dataset_defaults(name)


@pytest.mark.parametrize("name", ["sum_diff", "circles", "moons", "blobs", "xor", "spirals",
                                  "digits"])
def test_generated_datasets_share_split_and_scale_keys(name):
    assert set(SHARED_KEYS) <= set(config(name))


@pytest.mark.parametrize("name", ["sum_diff", "moons", "digits"])
def test_config_file_loads_as_is(name):
    params = config(name)
    ds = load_dataset(params.pop("name"), seed=0, dtype="float64", **params)
    assert ds.n_train > 0


@pytest.mark.parametrize("name", ["moons", "mnist", "sum_diff"])
def test_nullable_keys_accept_null(name, tmp_path):
    """null must mean something for every key declared nullable (run seed, none, all)."""
    keys = NULLABLE_KEYS & set(dataset_defaults(name))
    assert keys
    if name == "mnist":
        from data_writers import small_mnist_arrays, write_small_idx

        write_small_idx(tmp_path / "mnist", small_mnist_arrays())
        ds = load_dataset(name, data_dir=tmp_path, verify=False, **dict.fromkeys(keys))
    else:
        ds = load_dataset(name, seed=0, **dict.fromkeys(keys))
    assert ds.n_train > 0 and ds.X_val is None


def test_default_data_dir_is_env_then_project_data(monkeypatch, tmp_path):
    from mlplab.data import default_data_dir
    from mlplab.errors import DataError

    monkeypatch.setenv("MLPLAB_DATA_DIR", str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"
    with pytest.raises(DataError, match=rf"^{tmp_path}/elsewhere/fashion_mnist: no such dir"):
        load_dataset("fashion_mnist")
    monkeypatch.delenv("MLPLAB_DATA_DIR")
    project = Path(__file__).resolve().parents[2]
    assert (project / "pyproject.toml").is_file()
    assert default_data_dir() == project / "data"
