"""Pure machine learning for arche-predict: events, features, models, evaluation, explanations.

DataFrames in, DataFrames and estimators out. Never imports Flask, SQLAlchemy or the Moodle
client (import-linter enforces it), so it runs the same in the web app, the scheduler, the
benchmarks and a notebook.
"""
