"""Which command-line changes `trainer.resume` refuses, on the params real configs log (the
end-to-end case, a killed run resumed through the CLI, is tests/reliability/
test_resume_refusals.py, under `-m slow`)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mlplab.config import compose_train
from mlplab.errors import ConfigError
from mlplab.job.resume import refuse_changes
from mlplab.tracking.params import compared_params

BASE = ("dataset=xor", "trainer.epochs=100")


def params(*overrides: str) -> dict[str, str]:
    return compared_params(OmegaConf.to_container(compose_train(*BASE, *overrides),
                                                  resolve=True))


@pytest.mark.parametrize("change, line", [
    (["dataset=moons"], r"^dataset\.name: run abc was trained with xor, not moons; "
                        r"trainer\.resume cannot change it \(the data would not be those the "
                        r"run trained on\) \(\d+ more keys differ\); valid choices: "
                        r"dataset\.name=xor, or a new run without trainer\.resume$"),
    (["dataset.noise=0.3"], r"^dataset\.noise: run abc was trained with 0\.1, not 0\.3;"),
    (["seed=1"], r"^seed: run abc was trained with 0, not 1; .*the data would not"),
    (["architecture.hidden=[8]"], r"^architecture\.hidden: .*\[16, 16\], not \[8\]; .*the "
                                  r"model would not be the one in the checkpoint"),
    (["architecture.loss=mse"], r"^architecture\.loss: run abc was trained with null, not mse"),
    (["trainer.dtype=float32"], r"^trainer\.dtype: .*float64, not float32; .*the model"),
    (["optimizer=adam"], r"^optimizer\.name: .*sgd, not adam; .*the checkpoint restores"),
    (["optimizer.lr=0.5"], r"^optimizer\.lr: .*0\.01, not 0\.5"),
    (["schedule=step"], r"^schedule\.name: .*constant, not step"),
])
def test_a_change_resume_cannot_honour_is_refused_naming_its_key(change, line):
    with pytest.raises(ConfigError, match=line):
        refuse_changes("abc", params(), params(*change))


@pytest.mark.parametrize("change", [
    ["trainer.epochs=500"], ["trainer.log_every=5"], ["trainer.checkpoint_every=10"],
    ["trainer.batch_size=32"], ["trainer.early_stopping.enabled=true"],
    ["trainer.resume=abc"], ["trainer.progress=true", "logger.plots=false", "run_name=x"],
])
def test_what_the_training_loop_reads_afresh_may_change(change):
    refuse_changes("abc", params(), params(*change))  # no error
