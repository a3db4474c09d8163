"""The config layer: where the project is, the `${mlplab.*:}` resolvers, the structured
schema, value validation, composing a job's config, and the preflight check of a whole
command line.

Importing this package registers the resolvers and the schemas with Hydra.
"""

from mlplab.config import resolvers  # noqa: F401 -- registers the ${mlplab.*:} resolvers
from mlplab.config.compose import compose_train
from mlplab.config.paths import ROOT_ENV, conf_dir, project_root
from mlplab.config.resolvers import preset_name
from mlplab.config.schema import SCHEMAS, TrainConfig, register_configs
from mlplab.config.validation import validate, validate_for_dataset

register_configs()

__all__ = ["ROOT_ENV", "SCHEMAS", "TrainConfig", "compose_train", "conf_dir", "preset_name",
           "project_root", "register_configs", "validate", "validate_for_dataset"]
