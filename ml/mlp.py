"""The success predictor: a small torch MLP wrapped as a scikit-learn binary classifier.

Architecture and training follow the ARCHE success predictor exactly: input -> 16 -> 8 -> 1,
each hidden layer Linear -> LayerNorm -> ReLU -> Dropout(0.2), Kaiming-initialised; trained with
BCEWithLogits and AdamW (lr 1e-3, weight decay 1e-4), mini-batches of 32, at most 200 epochs,
early stopping on the validation loss with patience 25 (the best weights are restored),
ReduceLROnPlateau (patience 10, factor 0.5) and gradient-norm clipping at 1.0.

One departure for large cohorts: an epoch has at most ``max_batches_per_epoch`` (16) batches,
so batches grow beyond 32 rows past 512 training rows (a 5,000-student training set: about
200). A step of this small net costs the same few milliseconds of framework overhead whatever
its batch, so with batches of 32 the cost grew with the students (100 steps an epoch at 5,000,
half a minute a fit) while the prototype's cohorts never had more than 16. A larger batch
averages more students per step, and the epochs-based schedule (patience, plateau) keeps its
meaning: an epoch is still one pass over the data. Up to 512 rows nothing changes. AdamW runs
its fused kernel (one call for all parameters), the same update as the per-parameter loop.

Why LayerNorm and not BatchNorm: it does not depend on the batch, so a single student is scored
exactly like a batch, and MC-dropout passes (training mode) differ only by dropout.

The estimator keeps scikit-learn's contract (``__init__`` stores parameters, ``fit`` returns
self, fitted attributes end in ``_``), so it works in pipelines, grid searches, ``clone`` and
``sklearn.utils.estimator_checks``. It standardises its inputs itself (mean and scale learned in
``fit``), so it is usable without a scaler in front, and the ONNX export carries the same step.

Determinism: every random draw (weight init, the validation split, shuffling, dropout) comes from
generators seeded with ``random_state``, inside ``torch.random.fork_rng`` so the caller's global
torch RNG is left untouched. ``fit`` runs torch with ``n_threads`` intra-op threads (the
training budget); predictions always run on one: they serve a student or a course at a time on a
web or scheduler host, where a second thread only costs its wake-up, and a model trained with
more threads must not take them when it serves.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn


class MLPNet(nn.Module):
    """input -> hidden... -> 1 logit; each hidden block Linear, LayerNorm, ReLU, Dropout."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            lin = nn.Linear(width, h)
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            nn.init.zeros_(lin.bias)
            layers += [lin, nn.LayerNorm(h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        out = nn.Linear(width, 1)
        nn.init.kaiming_normal_(out.weight, nonlinearity="linear")
        nn.init.zeros_(out.bias)
        layers.append(out)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out.squeeze(-1)


class ScoringNet(nn.Module):
    """Standardisation + net + sigmoid in float32: what ONNX exports, P(positive) per row."""

    def __init__(self, net: MLPNet, mean: np.ndarray, scale: np.ndarray) -> None:
        super().__init__()
        self.net = net
        self.mean: torch.Tensor
        self.scale: torch.Tensor
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.scale
        return torch.sigmoid(self.net(z)).unsqueeze(-1)


@dataclass(frozen=True, slots=True)
class MCDropoutResult:
    """P(positive) over ``n`` stochastic passes: mean, std and the central 95% interval."""

    mean: np.ndarray
    std: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    samples: np.ndarray  # (n_passes, n_rows)


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)


@contextmanager
def _threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads for the call: on a few rows, a second thread only costs its
    wake-up (a single-student LayerNorm took milliseconds on a busy two-core host)."""
    old = torch.get_num_threads()
    wanted = max(1, threads)
    if wanted != old:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if wanted != old:
            torch.set_num_threads(old)


@contextmanager
def _torch_scope(seed: int, threads: int) -> Iterator[None]:
    with _threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class TorchMLPClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Binary classifier; see the module docstring for the fixed architecture and training."""

    def __init__(
        self,
        hidden: tuple[int, ...] = (16, 8),
        dropout: float = 0.2,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 32,
        max_epochs: int = 200,
        patience: int = 25,
        lr_patience: int = 10,
        lr_factor: float = 0.5,
        grad_clip: float = 1.0,
        validation_fraction: float = 0.2,
        random_state: int = 0,
        n_threads: int = 1,
        max_batches_per_epoch: int | None = 16,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor
        self.grad_clip = grad_clip
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_threads = n_threads
        self.max_batches_per_epoch = max_batches_per_epoch

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> TorchMLPClassifier:
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = unique_labels(y)
        if self.classes_.size != 2:
            raise ValueError(
                "Only binary classification is supported: TorchMLPClassifier needs samples of "
                f"2 classes, got {self.classes_.size} class(es)"
            )
        target = (y == self.classes_[1]).astype(np.float32)
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = ((X - self.mean_) / self.scale_).astype(np.float32)

        tr, va = self._validation_split(target)
        with _torch_scope(self.random_state, self.n_threads):
            net = MLPNet(Z.shape[1], tuple(self.hidden), self.dropout)
            x_tr, y_tr = torch.from_numpy(Z[tr]), torch.from_numpy(target[tr])
            x_va, y_va = torch.from_numpy(Z[va]), torch.from_numpy(target[va])
            epoch, best_epoch, best, train_curve, val_curve = self._train(
                net, x_tr, y_tr, x_va, y_va
            )
            # predict in float64: float32 matrix products differ in the last bits with the batch
            # size (BLAS blocking), and a student's score must not depend on who else is scored
            net.double().eval()
        self.module_ = net
        self.n_iter_ = epoch
        self.best_epoch_ = best_epoch
        self.best_validation_loss_ = best
        self.loss_curve_ = train_curve
        self.validation_loss_curve_ = val_curve
        return self

    def _validation_split(self, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row indices to train on and to validate on (stratified, ``validation_fraction``).

        With too little data to hold any out, both are every row: early stopping and the
        learning-rate schedule then watch the training loss."""
        n = len(target)
        counts = np.bincount(target.astype(np.int64), minlength=2)
        n_val = round(self.validation_fraction * n)
        if n_val >= 4 and counts.min() >= 2 and n - n_val >= 4:
            tr, va = train_test_split(
                np.arange(n),
                test_size=n_val,
                stratify=target,
                random_state=self.random_state,
            )
            return tr, va
        return np.arange(n), np.arange(n)

    def _train(
        self,
        net: MLPNet,
        x_tr: torch.Tensor,
        y_tr: torch.Tensor,
        x_va: torch.Tensor,
        y_va: torch.Tensor,
    ) -> tuple[int, int, float, list[float], list[float]]:
        """Mini-batch AdamW with gradient clipping, the rate lowered on validation plateaus,
        stopped after ``patience`` epochs without improvement; ``net`` ends with the weights of
        its best epoch. Returns (epochs run, best epoch, best validation loss, training and
        validation loss curves)."""
        params = list(net.parameters())  # once: walking the modules costs on every step
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay, fused=True)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.lr_factor, patience=self.lr_patience
        )
        loss_fn = nn.BCEWithLogitsLoss()
        gen = torch.Generator().manual_seed(self.random_state)
        batch = self.batch_size_for(len(x_tr))
        best, best_state, best_epoch, since = np.inf, copy.deepcopy(net.state_dict()), 0, 0
        train_curve: list[float] = []
        val_curve: list[float] = []
        epoch = 0
        for epoch in range(1, self.max_epochs + 1):
            net.train()
            perm = torch.randperm(len(x_tr), generator=gen)
            total = 0.0
            for start in range(0, len(perm), batch):
                idx = perm[start : start + batch]
                opt.zero_grad()
                loss = loss_fn(net(x_tr[idx]), y_tr[idx])
                loss.backward()
                nn.utils.clip_grad_norm_(params, self.grad_clip)
                opt.step()
                total += float(loss.item()) * len(idx)
            train_curve.append(total / len(perm))
            net.eval()
            with torch.no_grad():
                val = float(loss_fn(net(x_va), y_va).item())
            val_curve.append(val)
            sched.step(val)
            if val < best - 1e-7:
                best, best_state, best_epoch, since = val, copy.deepcopy(net.state_dict()), epoch, 0
            else:
                since += 1
                if since >= self.patience:
                    break
        net.load_state_dict(best_state)
        return epoch, best_epoch, float(best), train_curve, val_curve

    def batch_size_for(self, n_rows: int) -> int:
        """The mini-batch size for ``n_rows`` training rows: ``batch_size``, or larger so that an
        epoch has at most ``max_batches_per_epoch`` batches."""
        if self.max_batches_per_epoch is None:
            return int(self.batch_size)
        return max(int(self.batch_size), -(-n_rows // int(self.max_batches_per_epoch)))

    # ------------------------------------------------------------------ predict
    def _standardise(self, X: Any) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return torch.from_numpy((X - self.mean_) / self.scale_)

    def _logit(self, z: torch.Tensor) -> np.ndarray:
        """The net's logit (evaluation mode) for standardised rows."""
        self.module_.eval()
        with _threads(1), torch.no_grad():
            return np.asarray(self.module_(z).numpy(), dtype=np.float64)

    def decision_function(self, X: Any) -> np.ndarray:
        """The logit of the positive class (``classes_[1]``)."""
        return self._logit(self._standardise(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        p = _sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        positive = self.decision_function(X) >= 0.0
        return np.asarray(self.classes_[positive.astype(int)])

    def predict_mc(
        self, X: Any, n_passes: int = 100, random_state: int | None = None
    ) -> MCDropoutResult:
        """MC dropout: ``n_passes`` forward passes with dropout on (Gal & Ghahramani, 2016).

        The spread is the model's epistemic uncertainty for that student; with LayerNorm nothing
        else changes between training and evaluation mode.

        The passes run as one forward pass over the rows repeated ``n_passes`` times (pass-major):
        dropout draws an independent mask for every row of the batch, and LayerNorm works per
        row, so each copy is exactly one stochastic pass, as in a loop of passes, for one call
        into torch instead of ``n_passes`` (a what-if's 100 passes: ~30 ms -> well under 1 ms).
        The draws are seeded as before, but made in another order, so the samples are other
        draws from the same distribution than the loop's were.
        """
        z = self._standardise(X)
        seed = self.random_state if random_state is None else random_state
        s = self._mc_samples(z, n_passes, seed)
        return MCDropoutResult(
            mean=s.mean(axis=0),
            std=s.std(axis=0),
            lower=np.quantile(s, 0.025, axis=0),
            upper=np.quantile(s, 0.975, axis=0),
            samples=s,
        )

    def proba_and_mc(self, X: np.ndarray, n_passes: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """P(positive) and the samples of :meth:`predict_mc` (default seed; passes x rows) for
        a few rows of a finite float array, standardised once and checked for shape only:
        scikit-learn's full input check costs more than the net on a single student. The
        samples come unsummarised: the caller summarises what it makes of them (calibrated)."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected rows of {self.n_features_in_} features, got {X.shape}")
        z = torch.from_numpy((X - self.mean_) / self.scale_)
        return _sigmoid(self._logit(z)), self._mc_samples(z, n_passes, self.random_state)

    def _mc_samples(self, z: torch.Tensor, n_passes: int, seed: int) -> np.ndarray:
        """P(positive) per pass and row, (n_passes, rows)."""
        if n_passes < 1:
            raise ValueError(f"n_passes must be at least 1, got {n_passes}")
        # The masks come from a generator of our own, as ``nn.Dropout`` makes them (keep with
        # probability 1 - p, survivors scaled by 1 / (1 - p)): seeding the global generator in a
        # forked state cost more than the passes themselves (~4 ms), and leaves the caller's
        # random state alone all the same.
        gen = torch.Generator().manual_seed(int(seed))
        with _threads(1), torch.no_grad():
            h = z.repeat(n_passes, 1)
            for layer in self.module_.body:
                if not isinstance(layer, nn.Dropout):
                    h = layer(h)
                elif layer.p >= 1.0:
                    h = torch.zeros_like(h)
                elif layer.p > 0.0:
                    keep = 1.0 - layer.p
                    h = h * torch.empty_like(h).bernoulli_(keep, generator=gen).div_(keep)
            logits = h.squeeze(-1)
        return torch.sigmoid(logits).reshape(n_passes, len(z)).numpy().astype(np.float64)

    # ------------------------------------------------------------------ persistence
    def scoring_module(self) -> ScoringNet:
        """The fitted net with its standardisation and sigmoid (for ONNX export)."""
        check_is_fitted(self)
        net = copy.deepcopy(self.module_).float().eval()
        return ScoringNet(net, self.mean_, self.scale_).eval()

    def to_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """JSON-able metadata and a tensor ``state_dict``: a pickle-free serialisation."""
        check_is_fitted(self)
        params = self.get_params()
        params["hidden"] = list(params["hidden"])
        meta: dict[str, Any] = {
            "params": params,
            "classes": self.classes_.tolist(),
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": (
                [str(f) for f in self.feature_names_in_]
                if hasattr(self, "feature_names_in_")
                else None
            ),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "n_iter": int(self.n_iter_),
            "best_epoch": int(self.best_epoch_),
        }
        return meta, {k: v.detach().clone() for k, v in self.module_.state_dict().items()}

    @classmethod
    def from_state(cls, meta: dict[str, Any], state: dict[str, torch.Tensor]) -> TorchMLPClassifier:
        params = dict(meta["params"])
        params["hidden"] = tuple(params["hidden"])
        est = cls(**params)
        est.classes_ = np.asarray(meta["classes"])
        est.n_features_in_ = int(meta["n_features_in"])
        if meta.get("feature_names_in") is not None:
            est.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        est.mean_ = np.asarray(meta["mean"], dtype=np.float64)
        est.scale_ = np.asarray(meta["scale"], dtype=np.float64)
        est.n_iter_ = int(meta["n_iter"])
        est.best_epoch_ = int(meta["best_epoch"])
        net = MLPNet(est.n_features_in_, tuple(params["hidden"]), float(params["dropout"]))
        net.double().load_state_dict(state)
        est.module_ = net.eval()
        return est
