"""Model selection under grouped cross-validation: the grade regressor, its predictive
distribution, and the pass chance read from it.

Every search and every out-of-fold prediction uses ``GroupKFold`` on the offering, so a model
is always judged on offerings it never saw, which is the situation of a new course offering.

**Regressors.** The ARCHE prototype's Linear, Ridge, Lasso and ElasticNet, plus
HistGradientBoosting, each behind median imputation (and standardisation for the linear ones), are
grid-searched under grouped cross-validation and the one with the best CV R² is kept (MAE and RMSE
are reported too). The linear families' grids also choose the scale of counts and durations, raw or
``log1p`` (:class:`LogAmounts`; trees are indifferent to it): heavy-tailed counts early in a term
fit a straight line badly, and the log is non-decreasing, so the effort constraints below hold on
either scale. One more candidate, ``ensemble``, is the unweighted mean of every searched family,
each in its chosen configuration (the four linear families and the gradient boosting), a
scikit-learn ``VotingRegressor`` behind the same imputation: on each fold its members are fitted
exactly as those candidates were, so its out-of-fold predictions are the mean of theirs and it is
judged on the same folds at no extra fit (:func:`_ensemble_search`); it is kept only where its CV
R² is the best, which on the simulator it mostly is. The effort constraints cost each single
family some R², differently for each; their mean loses less. An ensemble of only the best linear
family and the gradient boosting (until December 2026) gave 0.003-0.009 less R² on held-out
offerings than the mean of all five, and weights fitted on the out-of-fold predictions (a
non-negative "super learner") no more than equal ones (``bench/calibration_loo.py``, README).

**Monotone in effort (issue #14).** Every family is constrained so that more of what a student
does never lowers the prediction: each column's direction of effort is declared once in
:mod:`ml.feature_info` (+1 for counts, time, active days...; -1 for the days since the last
visit; 0 for the rest, which stay free) and becomes ``monotonic_cst`` for the gradient boosting
and sign constraints for the linear families (:class:`SignedLinear`: scikit-learn's
``positive=True`` on sign-flipped columns, free columns split into a positive and a negative
part). A mean of such maps (the ``ensemble``) never falls either. The RBF SVR, which cannot be
constrained, left the candidates; it was not competitive on
the simulator (0.03 of CV R² behind the linear models). The MLP was only ever a pass classifier
and versions no longer train one (below). Since the pass chance is an increasing function of
the point prediction, it is monotone in effort too.

**The search, and its cost.** :func:`_grouped_search` does what ``GridSearchCV`` followed by a
second out-of-fold pass over the winner used to do, with the same folds, the same fits and the
same choice (the first configuration with the best mean fold score), minus the redundant fits:
the best configuration's out-of-fold predictions and fold models are kept from the search
instead of being fitted again, and only the selected model is refitted on all the data (not
every candidate). A candidate whose cost is not linear in the students (the SVR was one) can
have its grid tuned on at most :data:`DEFAULT_TUNE_ROWS` rows of each training fold (a seeded
random subset); only the configuration chosen there is then cross-validated on the whole folds.
Fitting runs under ``n_threads`` threads (BLAS, OpenMP for the gradient boosting, torch for the
MLP): on a shared two-core machine OpenMP's spinning threads cost more than they give (see
``bench/training.py``), and a nightly training must not starve the web workers.

**The grade distribution.** The signed out-of-fold residuals of the selected configuration, from
the very folds of the selection (so between-offering shift is inside them), calibrate a
conformal predictive system (:class:`ml.distribution.GradeDistribution`): the grade shown is
its median, the interval its central quantiles, the pass chance P(grade >= pass mark)
(:class:`PassChanceModel`, which offers the interface the services use for a classifier). The
refitted model stays a plain scikit-learn pipeline (a :class:`SignedLinear` is stored as the
``LinearRegression`` with the same coefficients, also inside the ``ensemble``'s members) for
skops, ONNX and the what-if's array path (which replays an ensemble member by member).
:func:`conformal_quantile` is the symmetric split-conformal quantile of earlier versions, kept
for callers of absolute residuals.

**Classifiers (diagnostics).** :func:`fit_classifier` still compares logistic regression,
HistGradientBoosting and the torch MLP (:class:`ml.mlp.TorchMLPClassifier`) on out-of-fold AUC
then Brier, with isotonic calibration, a decision threshold and an uncertainty band (MC dropout
or fold spread). Versions no longer train nor show one: a separately calibrated classifier
disagreed with the grade (a student predicted 10.9/20 shown a 0 % chance), and on the simulator
the grade distribution's chance ranks students at least as well (see
``bench/calibration_loo.py``). It stays for benchmarks and comparisons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn import config_context
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    VotingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.model_selection import GroupKFold, ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController, threadpool_limits

from ml.distribution import GradeDistribution
from ml.feature_info import effort_signs, log_columns
from ml.mlp import TorchMLPClassifier

ThresholdMetric = Literal["f1", "balanced_accuracy"]
Scorer = Callable[[np.ndarray, np.ndarray], float]

DEFAULT_TUNE_ROWS: Final[Mapping[str, int]] = {}
"""Candidates whose grid is tuned on training folds cut to at most that many rows (see the
module docstring). Empty since the RBF SVR, whose cost grows as n^2 to n^3, left the candidates
(issue #14: it cannot be made monotone in effort); the mechanism stays for a costly candidate."""


def make_pipeline(
    model: BaseEstimator, *, scale: bool = True, log: tuple[int, ...] | None = None
) -> Pipeline:
    """Median imputation (some features are undefined without events), then with ``log`` the
    :class:`LogAmounts` step on those columns, scaling, the model."""
    steps: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
    ]
    if log is not None:
        steps.append(("log", LogAmounts(log)))
    if scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("model", model))
    return Pipeline(steps)


class LogAmounts(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """``log1p`` of the columns at ``columns`` (a negative value read as 0), the other columns
    as they are; with ``active`` False, every column as it is. The model search tries both for
    the linear families (``log__active``), so a course keeps the scale its past offerings
    support.

    Why: counts and durations are heavy-tailed, most of all early in a term, and a straight
    line through the few students with ten times the typical count fits them at everyone
    else's expense; on the simulator's courses the log scale raised the leave-one-offering-out
    R² at 10 % of the term from 0.234 to 0.244 (``bench/calibration_loo.py``). ``log1p`` is
    non-decreasing, so a linear model whose coefficients follow the effort signs stays monotone
    in effort, and additive (a factor is still exact). ``columns`` come from
    :func:`ml.feature_info.log_columns`.
    """

    def __init__(self, columns: tuple[int, ...] = (), active: bool = True) -> None:
        self.columns = columns
        self.active = active

    def fit(self, X: Any, y: Any = None) -> LogAmounts:
        self.n_features_in_ = int(np.shape(X)[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        return _log1p_columns(X, self.logged)

    @property
    def logged(self) -> tuple[int, ...]:
        """The columns this step takes the log of (none when inactive)."""
        return tuple(self.columns) if self.active else ()


def _log1p_columns(X: Any, columns: Sequence[int]) -> np.ndarray:
    """A float copy of ``X`` with ``log1p(max(x, 0))`` in ``columns``: :class:`LogAmounts`'s
    arithmetic, also replayed by the what-if's array path."""
    Z = np.array(X, dtype=np.float64, copy=True)
    if len(columns):
        cols = list(columns)
        Z[:, cols] = np.log1p(np.maximum(Z[:, cols], 0.0))
    return Z


class SignedLinear(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A linear regressor whose coefficient on each column has the sign ``signs`` declares
    (+1: at least 0, -1: at most 0, 0: free): effort never lowers its prediction.

    ``kind`` is the ARCHE prototype's family (``linear``, ``ridge``, ``lasso``, ``elasticnet``),
    fitted with scikit-learn's ``positive=True`` on ``signs * x`` for constrained columns and on
    both ``x`` and ``-x`` for free ones (a free coefficient is the difference of two positive
    ones; for ridge, lasso and the elastic net the penalty's optimum puts one of the two at 0,
    so the free part is the same fit as without the constraint). After fitting, ``coef_`` and
    ``intercept_`` are in the columns' own space and :meth:`frozen` gives the same map as a
    plain ``LinearRegression``, which is what a version stores (skops, ONNX and the what-if's
    array path know it).
    """

    def __init__(
        self,
        kind: str = "ridge",
        alpha: float = 1.0,
        l1_ratio: float = 0.5,
        signs: tuple[int, ...] = (),
    ) -> None:
        self.kind = kind
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.signs = signs

    def _base(self) -> BaseEstimator:
        if self.kind == "linear":
            return LinearRegression(positive=True)
        if self.kind == "ridge":
            return Ridge(alpha=self.alpha, positive=True)
        if self.kind == "lasso":
            return Lasso(alpha=self.alpha, positive=True, max_iter=20_000)
        if self.kind == "elasticnet":
            return ElasticNet(
                alpha=self.alpha, l1_ratio=self.l1_ratio, positive=True, max_iter=20_000
            )
        raise ValueError(f"unknown linear family {self.kind!r}")

    def _sign_vector(self, d: int) -> np.ndarray:
        s = np.asarray(self.signs if len(self.signs) else np.zeros(d), dtype=np.float64)
        if s.shape != (d,) or not np.isin(s, (-1.0, 0.0, 1.0)).all():
            raise ValueError(f"signs must be {d} values among -1, 0 and 1")
        return s

    def fit(self, X: Any, y: Any) -> SignedLinear:
        Xa = np.asarray(X, dtype=np.float64)
        d = Xa.shape[1]
        s = self._sign_vector(d)
        free = s == 0
        flip = np.where(free, 1.0, s)
        Z = np.hstack([Xa * flip, -Xa[:, free]])
        base = self._base().fit(Z, np.asarray(y, dtype=np.float64))
        w = np.asarray(base.coef_, dtype=np.float64).reshape(-1)
        coef = w[:d] * flip
        coef[free] -= w[d:]
        self.coef_ = coef
        self.intercept_ = float(np.asarray(base.intercept_).reshape(-1)[0])
        self.n_features_in_ = d
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_)

    def frozen(self) -> LinearRegression:
        """The fitted map as a plain ``LinearRegression`` (same ``coef_``, ``intercept_``)."""
        plain = LinearRegression()
        plain.coef_ = self.coef_.copy()
        plain.intercept_ = np.float64(self.intercept_)
        plain.n_features_in_ = self.n_features_in_
        plain.rank_ = int(self.n_features_in_)
        plain.singular_ = np.ones(self.n_features_in_)
        return plain


def regressor_candidates(
    random_state: int = 0, signs: Sequence[int] | None = None, log: Sequence[int] = ()
) -> dict[str, tuple[Pipeline, dict[str, list[Any]]]]:
    """Name -> (pipeline, grid). Grids are small: a handful of offerings cannot tune more.

    ``signs`` (one per column, from :func:`ml.feature_info.effort_signs`) constrains every
    family to be monotone in effort: sign-constrained linear models, gradient boosting with
    ``monotonic_cst``. The prototype's RBF SVR cannot be constrained and is no longer a
    candidate (issue #14): it was rarely selected (about 0.03 of CV R² behind the linear
    models on the simulator) and could tell a student that more work lowers the grade.

    ``log`` (positions, from :func:`ml.feature_info.log_columns`) are the columns the linear
    families may read as ``log1p`` (:class:`LogAmounts`): their grids try both scales. Trees
    do not care about a monotone rescaling, so the gradient boosting reads the raw values.
    """
    cst = tuple(int(v) for v in signs) if signs is not None else ()
    cols = tuple(int(i) for i in log)
    scales: dict[str, list[Any]] = {"log__active": [False, True]} if cols else {}

    def linear(kind: str, grid: dict[str, list[Any]]) -> tuple[Pipeline, dict[str, list[Any]]]:
        return make_pipeline(SignedLinear(kind, signs=cst), log=cols), {**scales, **grid}

    return {
        "linear": linear("linear", {}),
        "ridge": linear("ridge", {"model__alpha": [0.1, 1.0, 10.0, 100.0]}),
        "lasso": linear("lasso", {"model__alpha": [0.01, 0.05, 0.2, 1.0]}),
        "elasticnet": linear(
            "elasticnet", {"model__alpha": [0.01, 0.1, 1.0], "model__l1_ratio": [0.2, 0.5, 0.8]}
        ),
        "hgb": (
            make_pipeline(_hgb(random_state, cst), scale=False),
            {"model__learning_rate": [0.05, 0.1], "model__max_depth": [3]},
        ),
        # The mean of every family: its members' configurations are not grid-searched again but
        # read from theirs (see fit_regressor); the grid is empty.
        "ensemble": (_ensemble_pipeline(random_state, cst, cols), {}),
    }


#: The linear families, all members of the ``ensemble`` (with the gradient boosting).
LINEAR_FAMILIES: Final = ("linear", "ridge", "lasso", "elasticnet")
#: The ``ensemble``'s members, always all five families whatever else is a candidate.
ENSEMBLE_MEMBERS: Final = (*LINEAR_FAMILIES, "hgb")


def _hgb(random_state: int, cst: tuple[int, ...]) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        max_iter=150,
        early_stopping=False,
        random_state=random_state,
        monotonic_cst=list(cst) if cst else None,
    )


def _ensemble_pipeline(
    random_state: int, cst: tuple[int, ...], log: tuple[int, ...] = ()
) -> Pipeline:
    """Median imputation, then the unweighted mean (``VotingRegressor``) of the four
    sign-constrained linear families (each behind its log step and standardisation) and the
    monotone gradient boosting: the same imputation and the same members as the
    ``linear``/.../``hgb`` candidates' pipelines, so its fit on a fold is the mean of theirs. A
    mean of maps that never fall with effort never falls either. This is the template;
    :func:`_ensemble_search` sets each member to its family's chosen configuration."""
    members: list[tuple[str, Any]] = [
        (kind, Pipeline(_member_steps(make_pipeline(SignedLinear(kind, signs=cst), log=log))))
        for kind in LINEAR_FAMILIES
    ]
    members.append(("hgb", _hgb(random_state, cst)))
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("model", VotingRegressor(members)),
        ]
    )


def _member_steps(pipeline: Pipeline) -> list[tuple[str, Any]]:
    """A candidate's pipeline without its imputation: what it is inside the ``ensemble``, which
    imputes once for all its members."""
    assert pipeline.steps[0][0] == "impute"
    return list(pipeline.steps[1:])


def classifier_candidates(
    random_state: int = 0, mlp_params: Mapping[str, Any] | None = None, n_threads: int = 1
) -> dict[str, tuple[Pipeline, dict[str, list[Any]]]]:
    return {
        "logistic": (
            make_pipeline(LogisticRegression(max_iter=5_000)),
            {"model__C": [0.1, 1.0]},
        ),
        "hgb": (
            make_pipeline(
                HistGradientBoostingClassifier(
                    max_iter=150, early_stopping=False, random_state=random_state
                ),
                scale=False,
            ),
            {"model__learning_rate": [0.05, 0.1], "model__max_depth": [3]},
        ),
        "mlp": (
            # the MLP standardises its inputs itself
            make_pipeline(
                TorchMLPClassifier(
                    **{"random_state": random_state, "n_threads": n_threads, **(mlp_params or {})}
                ),
                scale=False,
            ),
            {},
        ),
    }


def _as_frame(X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def _n_splits(groups: np.ndarray, wanted: int) -> int:
    n = int(pd.unique(groups).size)
    if n < 2:
        raise ValueError("grouped cross-validation needs at least 2 offerings")
    return min(wanted, n)


@dataclass
class _SearchResult:
    """The best configuration of one candidate, with what its cross-validation produced."""

    params: dict[str, Any]
    estimator: Pipeline  # unfitted, with ``params`` set
    oof: np.ndarray  # out-of-fold predictions (probabilities of class 1 for a classifier)
    fold_scores: dict[str, np.ndarray]  # per scorer, one score per fold
    fold_models: list[Pipeline]


def _capped(rows: np.ndarray, max_rows: int | None, random_state: int) -> np.ndarray:
    """``rows``, or a seeded random subset of ``max_rows`` of them (kept in order)."""
    if max_rows is None or rows.size <= max_rows:
        return rows
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(rows, size=max_rows, replace=False))


def _grouped_search(
    pipe: Pipeline,
    grid: Mapping[str, list[Any]],
    X: pd.DataFrame,
    y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    scorers: Mapping[str, Scorer],
    *,
    select: str,
    proba: bool,
    tune_rows: int | None = None,
    random_state: int = 0,
) -> _SearchResult:
    """Grid search over the given grouped folds; the best configuration is the first with the
    highest mean fold score of ``select`` (``GridSearchCV``'s rule). Its out-of-fold
    predictions and fold models come with it, so nothing is fitted twice.

    With ``tune_rows``, the grid is compared on training folds cut to that many rows, then the
    chosen configuration alone is cross-validated on the whole folds (what is returned).
    """
    if tune_rows is not None and len(grid) and max(len(t) for t, _ in splits) > tune_rows:
        cut = [(_capped(train, tune_rows, random_state), test) for train, test in splits]
        tuned = _grouped_search(pipe, grid, X, y, cut, scorers, select=select, proba=proba)
        chosen = {k: [v] for k, v in tuned.params.items()}
        return _grouped_search(pipe, chosen, X, y, splits, scorers, select=select, proba=proba)
    best: _SearchResult | None = None
    for params in ParameterGrid(dict(grid)):
        estimator = clone(pipe).set_params(**params)
        pred = np.full(len(y), np.nan)
        scores: dict[str, list[float]] = {name: [] for name in scorers}
        models: list[Pipeline] = []
        for train, test in splits:
            model = clone(estimator).fit(X.iloc[train], y[train])
            if proba:
                pred[test] = model.predict_proba(X.iloc[test])[:, 1]
            else:
                pred[test] = model.predict(X.iloc[test])
            for name, scorer in scorers.items():
                scores[name].append(float(scorer(y[test], pred[test])))
            models.append(model)
        result = _SearchResult(
            dict(params), estimator, pred, {k: np.array(v) for k, v in scores.items()}, models
        )
        if best is None or result.fold_scores[select].mean() > best.fold_scores[select].mean():
            best = result
    assert best is not None  # ParameterGrid yields at least one (possibly empty) configuration
    return best


def _splits(
    X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, n_splits: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(GroupKFold(n_splits=n_splits).split(X, y, groups))


def conformal_quantile(residuals: np.ndarray, alpha: float) -> float:
    """The ``ceil((n+1)(1-alpha))``-th smallest absolute residual (inf when n is too small)."""
    r = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    k = int(np.ceil((r.size + 1) * (1 - alpha)))
    return float(r[k - 1]) if 1 <= k <= r.size else float("inf")


# ------------------------------------------------------------------ single-student scoring
_controller: ThreadpoolController | None = None


@contextmanager
def _one_thread() -> Iterator[None]:
    """OpenMP and BLAS at one thread for the call: a prediction on a couple of rows is too
    small to share, and the gradient boosting's OpenMP team otherwise wakes (and spins) a thread
    per core, which on a shared two-core web host fights the other worker (p99 of a what-if:
    ~0.6 s). The controller is built once per process (building one scans the loaded libraries,
    about a millisecond); each limit then costs a few microseconds."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    with _controller.limit(limits=1):
        yield


def _array_step(step: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """A fitted imputer, log step or scaler as a plain numpy function (the same arithmetic as
    its ``transform``), or None for any other step."""
    if isinstance(step, SimpleImputer):
        stats = np.asarray(step.statistics_, dtype=np.float64)
        missing = step.missing_values
        if step.add_indicator or not (isinstance(missing, float) and np.isnan(missing)):
            return None
        keep = np.flatnonzero(~np.isnan(stats)) if not step.keep_empty_features else None
        fill = stats if keep is None else stats[keep]

        def impute(X: np.ndarray) -> np.ndarray:
            out = X if keep is None else X[:, keep]
            gaps = np.isnan(out)
            return np.where(gaps, fill, out) if gaps.any() else out

        return impute
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None

        def standardise(X: np.ndarray) -> np.ndarray:
            if mean is not None:
                X = X - mean
            if scale is not None:
                X = X / scale
            return X

        return standardise
    if isinstance(step, LogAmounts):
        cols = step.logged
        return (lambda X: _log1p_columns(X, cols)) if cols else (lambda X: X)
    return None


def _array_final(est: Any, method: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A linear model's prediction as its own arithmetic (``X @ coef_ + intercept_``, then the
    logistic function for P(class 1)), or None for any other estimator: even on an array,
    scikit-learn's input check costs ~0.3 ms a call, a hundred times the product on two rows."""
    coef = getattr(est, "coef_", None)
    intercept = getattr(est, "intercept_", None)
    if coef is None or intercept is None:
        return None
    if method == "predict" and type(est) in (LinearRegression, Ridge, Lasso, ElasticNet):
        if np.ndim(coef) != 1:
            return None
        return lambda Z: np.asarray(Z @ coef + intercept, dtype=np.float64)
    if method == "predict_proba" and type(est) is LogisticRegression:
        if np.ndim(coef) != 2 or coef.shape[0] != 1 or len(est.classes_) != 2:
            return None
        return lambda Z: np.asarray(expit((Z @ coef.T + intercept).reshape(-1)), dtype=np.float64)
    return None


class _Forest:
    """A fitted HistGradientBoosting model's trees as flat arrays, walked for all trees at once.

    Why: scikit-learn predicts tree by tree (150 Python calls, each with its own OpenMP region),
    about 20 us a tree whatever the rows; a what-if on the trees family asks six such models
    (regressor, classifier, five fold models): ~18 ms of the call. Here every tree advances one
    level per numpy step (a handful of steps for depth-3 trees). The walk is scikit-learn's
    (missing values follow ``missing_go_to_left``, else ``x <= num_threshold`` goes left) and
    the leaves are added to the baseline in iteration order, as ``_raw_predict`` does, so the
    sums are the same. Only numerical splits and one tree per iteration (regression, binary
    classification) are handled; anything else is left to the estimator.
    """

    def __init__(self, nodes: list[np.ndarray], baseline: float) -> None:
        offsets = np.cumsum([0] + [len(n) for n in nodes[:-1]])
        flat = np.concatenate(nodes)
        self.roots = offsets.astype(np.intp)
        shift = np.repeat(offsets, [len(n) for n in nodes]).astype(np.intp)
        leaf = flat["is_leaf"].astype(bool)
        own = np.arange(len(flat), dtype=np.intp)
        self.left = np.where(leaf, own, flat["left"].astype(np.intp) + shift)
        self.right = np.where(leaf, own, flat["right"].astype(np.intp) + shift)
        self.feature = np.where(leaf, 0, flat["feature_idx"]).astype(np.intp)
        self.threshold = flat["num_threshold"].astype(np.float64)
        self.missing_left = flat["missing_go_to_left"].astype(bool)
        self.leaf = leaf
        self.value = flat["value"].astype(np.float64)
        self.baseline = float(baseline)

    @classmethod
    def of(cls, est: Any) -> _Forest | None:
        predictors = getattr(est, "_predictors", None)
        baseline = getattr(est, "_baseline_prediction", None)
        if not predictors or baseline is None or np.size(baseline) != 1:
            return None
        if any(len(trees) != 1 for trees in predictors):
            return None
        nodes = [trees[0].nodes for trees in predictors]
        if any(n["is_categorical"].any() for n in nodes):
            return None
        return cls(nodes, float(np.ravel(baseline)[0]))

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The baseline plus every tree's leaf, per row (float64)."""
        rows = np.arange(X.shape[0])[None, :]
        at = np.repeat(self.roots[:, None], X.shape[0], axis=1)  # (trees, rows)
        while not self.leaf[at].all():
            x = X[rows, self.feature[at]]
            go_left = np.where(np.isnan(x), self.missing_left[at], x <= self.threshold[at])
            at = np.where(go_left, self.left[at], self.right[at])
        leaves = self.value[at]
        start = np.full((1, X.shape[0]), self.baseline)
        return np.asarray(np.cumsum(np.vstack([start, leaves]), axis=0)[-1], dtype=np.float64)


def _forest_final(est: Any, method: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A HistGradientBoosting model as a :class:`_Forest`: the regressor on the squared error
    (identity link), the binary classifier through the logistic function; None otherwise."""
    if method == "predict" and type(est) is HistGradientBoostingRegressor:
        if est.loss != "squared_error":
            return None
        forest = _Forest.of(est)
        return None if forest is None else forest.raw
    if method == "predict_proba" and type(est) is HistGradientBoostingClassifier:
        if len(est.classes_) != 2:
            return None
        forest = _Forest.of(est)
        return None if forest is None else (lambda Z: np.asarray(expit(forest.raw(Z))))
    return None


def _voting_final(est: Any, method: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A fitted ``VotingRegressor`` (the ``ensemble`` candidate) as the weighted mean of its
    members' array paths, the arithmetic of its ``predict`` (``numpy.average`` over the members'
    predictions); None when a member has no array path."""
    if method != "predict" or type(est) is not VotingRegressor:
        return None
    members: list[Callable[[np.ndarray], np.ndarray]] = []
    for member in est.estimators_:
        steps = member.steps if isinstance(member, Pipeline) else [("model", member)]
        front = [_array_step(step) for _, step in steps[:-1]]
        final = steps[-1][1]
        direct = _array_final(final, "predict") or _forest_final(final, "predict")
        if direct is None or any(f is None for f in front) or hasattr(final, "feature_names_in_"):
            return None
        members.append(_compose([f for f in front if f is not None], direct))
    weights = est._weights_not_none

    def average(Z: np.ndarray) -> np.ndarray:
        preds = np.column_stack([f(Z) for f in members])
        return np.asarray(np.average(preds, axis=1, weights=weights), dtype=np.float64)

    return average


def _compose(
    front: list[Callable[[np.ndarray], np.ndarray]], final: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    def run(Z: np.ndarray) -> np.ndarray:
        for step in front:
            Z = step(Z)
        return final(Z)

    return run


class ArrayPipeline:
    """A fitted pipeline's predictions on plain float rows (columns in ``features`` order).

    Why: a pipeline call on a one- or two-row DataFrame spends about two of its three
    milliseconds checking and converting the frame, and a what-if makes seven of them (the
    regressor, the classifier, five fold models). Here the imputer, the log step
    (:class:`LogAmounts`) and the scaler are replayed with their fitted statistics in numpy
    (the same arithmetic as their ``transform``) and the
    final estimator is called on the array with scikit-learn's parameter validation and
    finiteness checks off, which is sound because the imputed array is checked finite here
    first. A pipeline with any other step in front is called as is, through a DataFrame.
    """

    def __init__(self, pipeline: Pipeline, features: Sequence[str]) -> None:
        self.pipeline = pipeline
        self.features = list(features)
        front = [_array_step(step) for _, step in pipeline.steps[:-1]]
        self.final = pipeline.steps[-1][1]
        self.front: list[Callable[[np.ndarray], np.ndarray]] | None = (
            None
            if any(f is None for f in front) or hasattr(self.final, "feature_names_in_")
            else [f for f in front if f is not None]
        )
        self._direct = {
            m: _array_final(self.final, m)
            or _forest_final(self.final, m)
            or _voting_final(self.final, m)
            for m in ("predict", "predict_proba")
        }

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The rows as the final estimator sees them (imputed, logged, scaled)."""
        if self.front is None:
            frame = pd.DataFrame(X, columns=self.features)
            return np.asarray(self.pipeline[:-1].transform(frame), dtype=np.float64)
        Z = np.asarray(X, dtype=np.float64)
        for step in self.front:
            Z = step(Z)
        if not np.isfinite(Z).all():
            raise ValueError("features must be finite numbers or NaN (missing)")
        return Z

    def _call(self, method: str, X: np.ndarray) -> np.ndarray:
        if self.front is None:
            frame = pd.DataFrame(X, columns=self.features)
            with _one_thread():
                return np.asarray(getattr(self.pipeline, method)(frame))
        Z = self.transform(X)
        with config_context(assume_finite=True, skip_parameter_validation=True), _one_thread():
            return np.asarray(getattr(self.final, method)(Z))

    def predict(self, X: np.ndarray) -> np.ndarray:
        direct = self._direct["predict"]
        if direct is not None and self.front is not None:
            return direct(self.transform(X))
        return np.asarray(self._call("predict", X), dtype=np.float64)

    def predict_proba1(self, X: np.ndarray) -> np.ndarray:
        """P(class 1) per row."""
        direct = self._direct["predict_proba"]
        if direct is not None and self.front is not None:
            return direct(self.transform(X))
        return np.asarray(self._call("predict_proba", X)[:, 1], dtype=np.float64)


# ------------------------------------------------------------------ regression
@dataclass
class RegressionModel:
    """The selected, refitted grade regressor and the predictive distribution of the grade
    (:class:`ml.distribution.GradeDistribution`) calibrated on its out-of-fold residuals.

    :meth:`predict` is the point prediction ``yhat`` (the distribution's location is ``yhat``
    held on ``[0, scale]``, see :mod:`ml.distribution`);
    :meth:`predict_interval` gives what is shown: the distribution's median and its central
    interval. ``residuals`` are the absolute out-of-fold residuals (the symmetric conformal
    scores of earlier versions); ``estimator`` is the chosen configuration, unfitted (for
    refits on other offerings; None once loaded from disk).
    """

    name: str
    pipeline: Pipeline
    features: list[str]
    cv_table: pd.DataFrame
    oof_pred: np.ndarray
    residuals: np.ndarray
    distribution: GradeDistribution
    scale: float = 20.0
    alpha: float = 0.1
    estimator: Pipeline | None = None

    @property
    def pass_mark(self) -> float:
        return float(self.distribution.pass_mark)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The point prediction ``yhat`` (not clipped: the distribution clips its location)."""
        return np.asarray(self.pipeline.predict(X[self.features]), dtype=np.float64)

    def predict_grade(self, X: pd.DataFrame) -> np.ndarray:
        """The grade shown: the median of each student's distribution, on ``[0, scale]``."""
        return self.distribution.median(self.predict(X))

    def predict_interval(
        self, X: pd.DataFrame, alpha: float | None = None, *, clip: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(median, lower, upper) of each student's grade distribution, the interval at level
        ``1 - alpha``; clipped to [0, scale] by default."""
        return self.interval_of(self.predict(X), alpha, clip=clip)

    def interval_of(
        self, pred: np.ndarray, alpha: float | None = None, *, clip: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(median, lower, upper) for point predictions ``pred`` (of :meth:`predict`)."""
        lo, hi = self.distribution.interval(pred, alpha, clip=clip)
        return self.distribution.median(pred, clip=clip), lo, hi

    def predict_distribution(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Every shown number of each student, from one distribution: see
        :meth:`ml.distribution.GradeDistribution.summary`."""
        return self.distribution.summary(self.predict(X))

    @cached_property
    def _rows(self) -> ArrayPipeline:
        return ArrayPipeline(self.pipeline, self.features)

    def predict_rows(self, X: np.ndarray) -> np.ndarray:
        """:meth:`predict` for a few rows of plain floats in ``features`` order (see
        :class:`ArrayPipeline`)."""
        return self._rows.predict(X)

    def predict_interval_rows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`predict_interval` (default level, clipped) for a few rows of plain floats in
        ``features`` order: the same numbers without a DataFrame's per-call cost (see
        :class:`ArrayPipeline`)."""
        return self.interval_of(self._rows.predict(X), None, clip=True)


@dataclass
class PassChanceModel:
    """The pass chance ``P(grade >= pass mark)`` read from the regressor's grade distribution:
    what a version shows as "chance of passing" (issue #14), in the interface the services use
    for a classifier (``predict_proba``, ``uncertainty``, ``score_rows``, ``threshold``).

    No second model: the chance is at least ``threshold`` (0.5) exactly when the grade shown is
    at or above the pass mark, and it moves with the grade in every what-if. Its range comes
    from the calibration set (see :mod:`ml.distribution`), so ``n_passes`` is accepted and
    unused.
    """

    regressor: RegressionModel
    threshold: float = 0.5

    @property
    def name(self) -> str:
        return f"grade distribution ({self.regressor.name})"

    @property
    def features(self) -> list[str]:
        return self.regressor.features

    @property
    def pass_mark(self) -> float:
        return self.regressor.pass_mark

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(pass) per row."""
        return self._chance(self.regressor.predict(X))[0]

    def predict_proba_raw(self, X: pd.DataFrame) -> np.ndarray:
        """The same as :meth:`predict_proba`: there is no separate calibration step."""
        return self.predict_proba(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X) >= self.threshold).astype(np.int64)

    def uncertainty(self, X: pd.DataFrame, n_passes: int = 100) -> Uncertainty:
        """The chance's range from the calibration set (``n_passes`` unused)."""
        del n_passes
        return self._chance(self.regressor.predict(X))[1]

    def score_rows(self, X: np.ndarray, n_passes: int = 100) -> tuple[np.ndarray, Uncertainty]:
        """:meth:`predict_proba` and :meth:`uncertainty` on plain float rows."""
        del n_passes
        return self._chance(self.regressor.predict_rows(X))

    def chance_of(self, pred: np.ndarray) -> tuple[np.ndarray, Uncertainty]:
        """The chance and its range for point predictions ``pred`` of the regressor."""
        return self._chance(pred)

    def _chance(self, pred: np.ndarray) -> tuple[np.ndarray, Uncertainty]:
        dist = self.regressor.distribution
        p, low, high, std = dist.pass_chance(pred)
        method = f"conformal predictive distribution (n={dist.n}, cohort sd {dist.shift_sd:.2f})"
        return p, Uncertainty(mean=p, std=std, lower=low, upper=high, method=method)


def fit_regressor(
    X: pd.DataFrame,
    y: Sequence[float] | np.ndarray | pd.Series,
    groups: Sequence[Any] | np.ndarray | pd.Series,
    *,
    candidates: Sequence[str] | None = None,
    n_splits: int = 5,
    alpha: float = 0.1,
    scale: float = 20.0,
    pass_mark: float = 10.0,
    random_state: int = 0,
    n_threads: int = 1,
    tune_rows: Mapping[str, int] = DEFAULT_TUNE_ROWS,
    monotone: bool = True,
    chance_level: float = 0.95,
) -> RegressionModel:
    """Grid-search each candidate under GroupKFold (the grid of a candidate in ``tune_rows`` on
    cut training folds), keep the best CV R², refit it on everything, and calibrate the grade
    distribution on the winner's out-of-fold residuals.

    With ``monotone`` (the default) every candidate is constrained so that no feature's effort
    direction (:func:`ml.feature_info.effort_signs`) lowers its prediction.
    """
    X = _as_frame(X)
    y_arr = np.asarray(y, dtype=np.float64)
    g = np.asarray(groups)
    k = _n_splits(g, n_splits)
    columns = list(map(str, X.columns))
    signs = effort_signs(columns) if monotone else None
    pool = regressor_candidates(random_state, signs, log_columns(columns))
    names = list(candidates) if candidates is not None else list(pool)
    splits = _splits(X, y_arr, g, k)
    scorers: dict[str, Scorer] = {
        "r2": r2_score,
        "mae": mean_absolute_error,
        "rmse": root_mean_squared_error,
    }
    rows: list[dict[str, Any]] = []
    searches: dict[str, _SearchResult] = {}
    searched = [n for n in names if n != "ensemble"]
    if "ensemble" in names:  # its members are searched even when not candidates themselves
        searched += [n for n in ENSEMBLE_MEMBERS if n not in searched]
    with threadpool_limits(limits=n_threads):
        for name in [*searched, *(["ensemble"] if "ensemble" in names else [])]:
            if name == "ensemble":
                found = _ensemble_search(pool["ensemble"][0], searches, y_arr, splits, scorers)
            else:
                pipe, grid = pool[name]
                found = _grouped_search(
                    pipe,
                    grid,
                    X,
                    y_arr,
                    splits,
                    scorers,
                    select="r2",
                    proba=False,
                    tune_rows=tune_rows.get(name),
                    random_state=random_state,
                )
            searches[name] = found
            if name not in names:
                continue
            folds = found.fold_scores
            rows.append(
                {
                    "model": name,
                    "params": {kk.removeprefix("model__"): v for kk, v in found.params.items()},
                    "cv_r2": float(folds["r2"].mean()),
                    "cv_r2_std": float(folds["r2"].std()),
                    "cv_mae": float(folds["mae"].mean()),
                    "cv_rmse": float(folds["rmse"].mean()),
                }
            )
        table = pd.DataFrame(rows).sort_values("cv_r2", ascending=False).reset_index(drop=True)
        best = str(table.loc[0, "model"])
        chosen = searches[best]
        final = _frozen(clone(chosen.estimator).fit(X, y_arr))
    return RegressionModel(
        name=best,
        pipeline=final,
        features=list(map(str, X.columns)),
        cv_table=table,
        oof_pred=chosen.oof,
        residuals=np.abs(y_arr - chosen.oof),
        distribution=GradeDistribution.from_oof(
            y_arr,
            chosen.oof,
            g,
            scale=scale,
            pass_mark=pass_mark,
            alpha=alpha,
            chance_level=chance_level,
        ),
        scale=scale,
        alpha=alpha,
        estimator=chosen.estimator,
    )


def _frozen(pipeline: Pipeline) -> Pipeline:
    """A fitted pipeline whose :class:`SignedLinear` steps (also inside an ensemble's members)
    are replaced by the same map as a plain ``LinearRegression`` (see
    :meth:`SignedLinear.frozen`), in place."""
    last = pipeline.steps[-1][1]
    if isinstance(last, SignedLinear):
        pipeline.steps[-1] = (pipeline.steps[-1][0], last.frozen())
    elif isinstance(last, VotingRegressor):
        for member in last.estimators_:  # named_estimators_ holds the same objects
            if isinstance(member, Pipeline):
                _frozen(member)
        # the unfitted templates too (a stored version holds no SignedLinear at all)
        last.estimators = [
            (name, clone(member))
            for (name, _), member in zip(last.estimators, last.estimators_, strict=True)
        ]
    return pipeline


def _ensemble_search(
    pipe: Pipeline,
    searches: Mapping[str, _SearchResult],
    y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    scorers: Mapping[str, Scorer],
) -> _SearchResult:
    """The ``ensemble`` candidate on the same folds, without fitting anything: its members
    (:data:`ENSEMBLE_MEMBERS`) are each in the configuration its search chose. On each fold the
    members are fitted exactly as those candidates were (same imputation, same data, same
    seeds), so the ensemble's out-of-fold predictions are the mean of theirs; its fold models
    are those members' fold models, for the record."""
    chosen = {name: searches[name] for name in ENSEMBLE_MEMBERS}
    members: list[tuple[str, Any]] = []
    for name, found in chosen.items():
        steps = _member_steps(clone(found.estimator))
        # a bare estimator when the family has no step of its own (the gradient boosting), as
        # scikit-learn's VotingRegressor holds it
        members.append((name, steps[0][1] if len(steps) == 1 else Pipeline(steps)))
    estimator = clone(pipe).set_params(model__estimators=members, model__weights=None)
    oof = np.mean(np.column_stack([found.oof for found in chosen.values()]), axis=1)
    scores = {
        name: np.array([float(scorer(y[test], oof[test])) for _, test in splits])
        for name, scorer in scorers.items()
    }
    params: dict[str, Any] = {
        name: {k.removeprefix("model__"): v for k, v in found.params.items()}
        for name, found in chosen.items()
    }
    models = [m for found in chosen.values() for m in found.fold_models]
    return _SearchResult(params, estimator, oof, scores, models)


# ------------------------------------------------------------------ classification
@dataclass(frozen=True, slots=True)
class Uncertainty:
    """Calibrated P(pass): mean, std, central 95% interval, and how it was obtained."""

    mean: np.ndarray
    std: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    method: str


def choose_threshold(y: np.ndarray, proba: np.ndarray, metric: ThresholdMetric = "f1") -> float:
    """The probability cut that maximises ``metric`` on validation predictions (ties: closest
    to 0.5, so a flat optimum does not drift to an extreme)."""
    candidates = np.unique(np.r_[proba, 0.5])
    score_fn = f1_score if metric == "f1" else balanced_accuracy_score
    scores = np.array(
        [score_fn(y, (proba >= c).astype(int), **({"zero_division": 0.0} if metric == "f1" else {}))
         for c in candidates]
    )  # fmt: skip
    best = np.flatnonzero(np.isclose(scores, scores.max()))
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


class SingleClassError(ValueError):
    """Training data whose students all passed (``only == 1``) or all failed (``only == 0``),
    or is empty (``only is None``): no classifier can learn a pass chance from one class, and
    saying which state it is lets the caller tell the teacher, not print a traceback."""

    def __init__(self, only: int | None) -> None:
        self.only = only
        state = {1: "every past student passed", 0: "every past student failed"}.get(
            only if only is not None else -1, "no past student has a grade"
        )
        super().__init__(f"{state}: pass chances cannot be learned (pass/fail needs both classes)")


@dataclass
class ClassificationModel:
    """The selected, refitted pass classifier, its isotonic calibration and threshold."""

    name: str
    estimator: Pipeline
    calibrator: IsotonicRegression
    threshold: float
    features: list[str]
    cv_table: pd.DataFrame
    oof_proba_raw: np.ndarray
    oof_proba: np.ndarray
    threshold_metric: ThresholdMetric = "f1"
    fold_models: list[Pipeline] = field(default_factory=list)

    def predict_proba_raw(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(X[self.features])[:, 1], dtype=np.float64)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(pass) per row."""
        return np.asarray(self.calibrator.predict(self.predict_proba_raw(X)), dtype=np.float64)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X) >= self.threshold).astype(np.int64)

    def uncertainty(self, X: pd.DataFrame, n_passes: int = 100) -> Uncertainty:
        """MC dropout for the MLP; the fold models' spread otherwise; both calibrated."""
        Xf = X[self.features]
        model = self.estimator[-1]
        if isinstance(model, TorchMLPClassifier):
            Z = self.estimator[:-1].transform(Xf)
            samples = model.predict_mc(Z, n_passes=n_passes).samples
            method = f"mc_dropout({n_passes})"
        elif self.fold_models:
            samples = np.stack([m.predict_proba(Xf)[:, 1] for m in self.fold_models])
            method = f"fold_ensemble({len(self.fold_models)})"
        else:
            samples = self.predict_proba_raw(X)[None, :]
            method = "none"
        return self._spread(samples, method)

    def _spread(self, samples: np.ndarray, method: str) -> Uncertainty:
        """Calibrated samples (passes or fold models x rows) summarised per row."""
        cal = self._calibrate(samples.ravel()).reshape(samples.shape)
        return Uncertainty(
            mean=cal.mean(axis=0),
            std=cal.std(axis=0),
            lower=np.quantile(cal, 0.025, axis=0),
            upper=np.quantile(cal, 0.975, axis=0),
            method=method,
        )

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        """The isotonic map, as ``IsotonicRegression.predict`` computes it (clip to the fitted
        range, then its interpolator) without its input check on a few values."""
        cal = self.calibrator
        f = getattr(cal, "f_", None)
        if cal.out_of_bounds == "clip" and f is not None:
            T = np.clip(np.asarray(raw, dtype=np.float64).reshape(-1), cal.X_min_, cal.X_max_)
            return np.asarray(f(T), dtype=np.float64)
        return np.asarray(cal.predict(raw), dtype=np.float64)

    @cached_property
    def _rows(self) -> ArrayPipeline:
        return ArrayPipeline(self.estimator, self.features)

    @cached_property
    def _fold_rows(self) -> list[ArrayPipeline]:
        return [ArrayPipeline(m, self.features) for m in self.fold_models]

    def score_rows(self, X: np.ndarray, n_passes: int = 100) -> tuple[np.ndarray, Uncertainty]:
        """:meth:`predict_proba` and :meth:`uncertainty` for a few rows of plain floats in
        ``features`` order, the same numbers without a DataFrame's per-call cost (see
        :class:`ArrayPipeline`): the front of the pipeline runs once, and the MLP's point
        estimate and its MC-dropout passes share the standardised rows."""
        model = self.estimator[-1]
        if isinstance(model, TorchMLPClassifier):
            raw, samples = model.proba_and_mc(self._rows.transform(X), n_passes=n_passes)
            method = f"mc_dropout({n_passes})"
        else:
            raw = self._rows.predict_proba1(X)
            if self.fold_models:
                samples = np.stack([m.predict_proba1(X) for m in self._fold_rows])
                method = f"fold_ensemble({len(self.fold_models)})"
            else:
                samples, method = raw[None, :], "none"
        return self._calibrate(raw), self._spread(samples, method)


def fit_classifier(
    X: pd.DataFrame,
    y: Sequence[int] | np.ndarray | pd.Series,
    groups: Sequence[Any] | np.ndarray | pd.Series,
    *,
    candidates: Sequence[str] | None = None,
    n_splits: int = 5,
    threshold_metric: ThresholdMetric = "f1",
    auc_tolerance: float = 0.005,
    random_state: int = 0,
    mlp_params: Mapping[str, Any] | None = None,
    extra_candidates: Mapping[str, tuple[Pipeline, dict[str, list[Any]]]] | None = None,
    n_threads: int = 1,
) -> ClassificationModel:
    """Compare candidates on grouped out-of-fold probabilities; calibrate and threshold the best.

    ``extra_candidates`` adds named (pipeline, grid) entries to the standard pool, e.g. a model
    a course team trusts; ``candidates`` picks names from the union.
    """
    X = _as_frame(X)
    y_arr = np.asarray(y, dtype=np.int64)
    if np.unique(y_arr).size != 2:
        raise SingleClassError(int(y_arr[0]) if y_arr.size else None)
    g = np.asarray(groups)
    k = _n_splits(g, n_splits)
    pool = {
        **classifier_candidates(random_state, mlp_params, n_threads),
        **dict(extra_candidates or {}),
    }
    names = list(candidates) if candidates is not None else list(pool)
    splits = _splits(X, y_arr, g, k)
    rows, fitted = [], {}
    with threadpool_limits(limits=n_threads):
        for name in names:
            pipe, grid = pool[name]
            found = _grouped_search(
                pipe, grid, X, y_arr, splits, {"auc": roc_auc_score}, select="auc", proba=True
            )
            rows.append(
                {
                    "model": name,
                    "params": {kk.removeprefix("model__"): v for kk, v in found.params.items()},
                    "cv_auc": float(roc_auc_score(y_arr, found.oof)),
                    "cv_brier": float(brier_score_loss(y_arr, found.oof)),
                }
            )
            fitted[name] = found
        table = pd.DataFrame(rows)
        top = table["cv_auc"].max()
        near = table[table["cv_auc"] >= top - auc_tolerance]
        ranked = near.sort_values(["cv_brier", "cv_auc"], ascending=[True, False])
        best = str(ranked.iloc[0]["model"])
        table = table.sort_values("cv_auc", ascending=False).reset_index(drop=True)
        table["selected"] = table["model"] == best
        chosen = fitted[best]
        oof = chosen.oof
        calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(oof, y_arr)
        oof_cal = np.asarray(calibrator.predict(oof), dtype=np.float64)
        final = clone(chosen.estimator).fit(X, y_arr)
    return ClassificationModel(
        name=best,
        estimator=final,
        calibrator=calibrator,
        threshold=choose_threshold(y_arr, oof_cal, threshold_metric),
        features=list(X.columns),
        cv_table=table,
        oof_proba_raw=oof,
        oof_proba=oof_cal,
        threshold_metric=threshold_metric,
        fold_models=chosen.fold_models,
    )


REGRESSOR_NAMES: Final = tuple(regressor_candidates())
CLASSIFIER_NAMES: Final = ("logistic", "hgb", "mlp")


def regression_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R², MAE and RMSE (shared by selection reports and :mod:`ml.evaluation`)."""
    return {
        "r2": float(r2_score(y, pred)),
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(root_mean_squared_error(y, pred)),
    }
