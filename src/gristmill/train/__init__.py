"""Training, evaluation and explanation of models: from a training set to a model version.

`spec` is what `models/*.py` declares (`Model`, `time_split`, `kfold`, `group_kfold`);
`data`, `encode`, `split` and `fit` turn a training set into a fitted estimator
(`estimators/`, one module per family); `evaluation` scores predictions (binary,
regression, multiclass, and a baseline rule), `explain` says which features matter and
how much each row's prediction owes to each, `report` renders an evaluation as one
self-contained HTML page; `trainer` puts them together and registers the version.
"""

from gristmill.monitor.alerts import Alerts
from gristmill.train.policy import Policy, Rule
from gristmill.train.spec import Model, Search, Split, group_kfold, kfold, time_split

__all__ = [
    "Alerts",
    "Model",
    "Policy",
    "Rule",
    "Search",
    "Split",
    "group_kfold",
    "kfold",
    "time_split",
]
