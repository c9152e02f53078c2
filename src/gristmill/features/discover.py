"""Loading the feature views and datasets a project defines in features/*.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gristmill.errors import ConfigError, did_you_mean
from gristmill.features.definition import Dataset, FeatureView
from gristmill.features.pit import Selection
from gristmill.project import project_modules

FEATURES_DIR = "features"


@dataclass
class Definitions:
    views: dict[str, FeatureView] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)

    def view(self, name: str) -> FeatureView:
        if name not in self.views:
            raise ConfigError(
                f"No feature view '{name}'.{did_you_mean(name, self.views)}"
                f" Views: {', '.join(self.views) or 'none'}."
            )
        return self.views[name]

    def dataset(self, name: str) -> Dataset:
        if name not in self.datasets:
            raise ConfigError(
                f"No dataset '{name}'.{did_you_mean(name, self.datasets)}"
                f" Datasets: {', '.join(self.datasets) or 'none'}."
            )
        return self.datasets[name]

    def selections(self, dataset: Dataset, relations: dict[str, str]) -> list[Selection]:
        """The views and columns `dataset` asks for ('view' or 'view.column'), in order;
        `relations` maps each view to its source's quoted relation."""
        chosen: dict[str, list[str]] = {}
        for entry in dataset.features:
            name, _, column = entry.partition(".")
            view = self.view(name)
            columns = view.columns()
            if column and column not in columns:
                raise ConfigError(
                    f"{dataset.where}: dataset {dataset.name} asks for {entry}, which view {name}"
                    f" does not make.{did_you_mean(column, columns)} It makes: {', '.join(columns)}."
                )
            picked = chosen.setdefault(name, [])
            picked.extend(c for c in ([column] if column else columns) if c not in picked)
        return [Selection(self.views[n], cols, relations[n]) for n, cols in chosen.items()]


def load_definitions(root: Path) -> Definitions:
    """Every FeatureView and Dataset assigned at the top level of features/*.py."""
    found = Definitions()
    for display, module in project_modules(root, FEATURES_DIR, "gristmill_project_features"):
        for value in vars(module).values():
            if isinstance(value, FeatureView | Dataset):
                value.where = display
                into: dict[str, FeatureView] | dict[str, Dataset] = (
                    found.views if isinstance(value, FeatureView) else found.datasets
                )
                if value.name in into and into[value.name] is not value:
                    raise ConfigError(
                        f"Two definitions are named '{value.name}': {into[value.name].where}"
                        f" and {display}."
                    )
                into[value.name] = value  # type: ignore[assignment]
    return found
