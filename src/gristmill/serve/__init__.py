"""Serving: an HTTP API that scores requests with a registered model and the online
features of their entities, decides by the model's policy, says why, and logs every
prediction.

`scoring.Scorer` does the work (and notebooks can call it); `app.create_app` is the
Starlette app; `log.PredictionLog` the append-only prediction log.
"""
