"""The quickstart project: a synthetic fintech application database and its gristmill project."""
