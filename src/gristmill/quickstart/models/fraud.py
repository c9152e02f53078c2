"""The fraud model: gradient-boosted trees on the transaction and the behaviour features of
its user and merchant as of its time, trained on the past and evaluated on the newest 20%,
beside the rule it replaces (flag the largest 1% of amounts). Served, a score of 0.7 or
more declines and 0.2 or more goes to review; a very large amount always goes to review.
`gristmill monitor fraud` alerts when a feature's or the score's PSI against the training
set passes 0.25."""

from gristmill.train import Alerts, Model, Policy, Rule, time_split

fraud = Model(
    name="fraud",
    training_set="fraud_training",
    target="is_bad",
    task="binary",
    estimator="lightgbm",
    params={"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15},
    split=time_split(test=0.2),
    baseline="amount >= quantile_cont(amount, 0.99) OVER ()",
    policy=Policy(
        thresholds={"decline": 0.7, "review": 0.2},
        default="approve",
        rules=[Rule("amount", ">", 5_000_000, "review")],
    ),
    alerts=Alerts(psi=0.25, score_psi=0.25),
)
