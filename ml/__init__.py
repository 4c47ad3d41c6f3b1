"""Pure machine learning for arche-predict: events, features, models, evaluation, explanations.

DataFrames in, DataFrames and estimators out. Never imports Flask, SQLAlchemy or the Moodle
client (import-linter enforces it), so it runs the same in the web app, the scheduler, the
benchmarks and a notebook.

Modules, in the order data flows through them:

* :mod:`ml.events`: the canonical event frame, Moodle event meanings, standard-log conversion;
* :mod:`ml.features`: ``compute_features``, as-of engagement features per enrolled student;
* :mod:`ml.dataset`: training sets from past offerings at relative checkpoints;
* :mod:`ml.models` and :mod:`ml.mlp`: grade regressors monotone in effort, selected under
  cross-validation grouped by offering, and the pass chance read from their grade distribution
  (trained pass classifiers, incl. the torch MLP, stay for diagnostics);
* :mod:`ml.distribution`: one predictive distribution of the final grade per student: the grade
  shown, its interval and the pass chance with its range;
* :mod:`ml.evaluation`: the report of a model version (leave one offering out) and its gate;
* :mod:`ml.explain`: top factors, sensitivity curves, what-if;
* :mod:`ml.registry`: pickle-free model versions and ONNX export;
* :mod:`ml.training`: train a version, score a running offering (what the services call).

The simulator of Moodle courses (the demo's, the tests' and the benchmarks' data) is the
``simulation`` package: it imports ``ml``, never the reverse.
"""
