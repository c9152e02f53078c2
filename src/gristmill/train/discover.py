"""Loading the models a project defines in models/*.py."""

from __future__ import annotations

from pathlib import Path

from gristmill.errors import ConfigError, did_you_mean
from gristmill.project import project_modules
from gristmill.train.spec import Model

MODELS_DIR = "models"


def load_models(root: Path) -> dict[str, Model]:
    """Every Model assigned at the top level of models/*.py, by name."""
    found: dict[str, Model] = {}
    for display, module in project_modules(root, MODELS_DIR, "gristmill_project_models"):
        for value in vars(module).values():
            if isinstance(value, Model):
                value.where = display
                if value.name in found and found[value.name] is not value:
                    raise ConfigError(
                        f"Two models are named '{value.name}': {found[value.name].where}"
                        f" and {display}."
                    )
                found[value.name] = value
    return found


def find_model(models: dict[str, Model], name: str) -> Model:
    if name not in models:
        raise ConfigError(
            f"No model '{name}'.{did_you_mean(name, models)} Models: {', '.join(models) or 'none'}"
            " (defined in models/*.py)."
        )
    return models[name]
