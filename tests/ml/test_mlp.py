"""The torch MLP honours the scikit-learn estimator contract and the specified training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from ml.mlp import TorchMLPClassifier


# max_epochs is lowered only to keep the ~50 checks fast; every other setting is the specified one.
@parametrize_with_checks([TorchMLPClassifier(max_epochs=15)])  # type: ignore[untyped-decorator]
def test_sklearn_estimator_checks(estimator: TorchMLPClassifier, check: object) -> None:
    name = str(getattr(getattr(check, "func", check), "__name__", ""))
    if name == "check_array_api_input":
        # This check only applies to estimators that declare array-API support; scikit-learn
        # would skip it. Assert what makes it inapplicable instead of skipping: the estimator
        # converts inputs to numpy and says so in its tags.
        assert not estimator.__sklearn_tags__().array_api_support
        return
    check(estimator)  # type: ignore[operator]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=300, n_features=8, n_informative=4, class_sep=1.2, random_state=0
    )
    return X * 50 + 100, y  # far from standardised: the estimator must scale itself


@pytest.fixture(scope="module")
def fitted(data: tuple[np.ndarray, np.ndarray]) -> TorchMLPClassifier:
    return TorchMLPClassifier(random_state=3).fit(*data)


def test_architecture_is_the_specified_one(fitted: TorchMLPClassifier) -> None:
    layers = list(fitted.module_.body)
    linear = [m for m in layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(8, 16), (16, 8), (8, 1)]
    assert sum(isinstance(m, nn.LayerNorm) for m in layers) == 2
    assert sum(isinstance(m, nn.ReLU) for m in layers) == 2
    drops = [m for m in layers if isinstance(m, nn.Dropout)]
    assert [d.p for d in drops] == [0.2, 0.2]
    defaults = TorchMLPClassifier().get_params()
    assert defaults["lr"] == 1e-3
    assert defaults["weight_decay"] == 1e-4
    assert defaults["batch_size"] == 32
    assert defaults["max_epochs"] == 200
    assert defaults["patience"] == 25
    assert defaults["lr_patience"] == 10
    assert defaults["lr_factor"] == 0.5
    assert defaults["grad_clip"] == 1.0


def test_learns_and_stops_early(
    fitted: TorchMLPClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = data
    assert fitted.score(X, y) > 0.85
    # early stopping: training ended `patience` epochs after the best validation loss
    assert fitted.n_iter_ == fitted.best_epoch_ + 25 or fitted.n_iter_ == 200
    assert fitted.best_validation_loss_ == pytest.approx(min(fitted.validation_loss_curve_))
    assert len(fitted.loss_curve_) == fitted.n_iter_


def test_seeded_and_deterministic(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    a = TorchMLPClassifier(random_state=1, max_epochs=30).fit(X, y).predict_proba(X)
    b = TorchMLPClassifier(random_state=1, max_epochs=30).fit(X, y).predict_proba(X)
    c = TorchMLPClassifier(random_state=2, max_epochs=30).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_callers_torch_rng_is_left_alone(data: tuple[np.ndarray, np.ndarray]) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    TorchMLPClassifier(max_epochs=3).fit(*data)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_mc_dropout_gives_a_spread(
    fitted: TorchMLPClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = data
    point = fitted.predict_proba(X[:20])[:, 1]
    mc = fitted.predict_mc(X[:20], n_passes=200)
    assert mc.samples.shape == (200, 20)
    assert (mc.std > 0).all()
    assert (mc.lower <= mc.mean).all()
    assert (mc.mean <= mc.upper).all()
    assert np.abs(mc.mean - point).mean() < 0.1  # centred near the deterministic prediction
    again = fitted.predict_mc(X[:20], n_passes=200)
    np.testing.assert_array_equal(mc.samples, again.samples)
    # evaluation mode is restored: plain predictions are unchanged
    np.testing.assert_array_equal(fitted.predict_proba(X[:20])[:, 1], point)


def test_binary_only() -> None:
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="Only binary"):
        TorchMLPClassifier(max_epochs=2).fit(X, np.arange(30) % 3)


def test_state_round_trip(fitted: TorchMLPClassifier, data: tuple[np.ndarray, np.ndarray]) -> None:
    meta, state = fitted.to_state()
    again = TorchMLPClassifier.from_state(meta, state)
    np.testing.assert_array_equal(again.predict_proba(data[0]), fitted.predict_proba(data[0]))


def test_batches_grow_only_past_the_prototypes_cohorts(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Up to 16 batches of 32 (512 rows) an epoch is the prototype's; beyond, at most 16
    batches an epoch, so a fit's cost stops growing with the number of steps."""
    est = TorchMLPClassifier()
    assert est.batch_size_for(240) == 32
    assert est.batch_size_for(512) == 32
    assert est.batch_size_for(4000) == 250
    assert TorchMLPClassifier(max_batches_per_epoch=None).batch_size_for(4000) == 32
    X, y = data
    big = np.tile(X, (4, 1)), np.tile(y, 4)  # 1200 rows: 960 to train, 60 per batch
    fitted = TorchMLPClassifier(random_state=1).fit(*big)
    assert fitted.score(*big) > 0.85
    assert fitted.n_iter_ == fitted.best_epoch_ + 25 or fitted.n_iter_ == 200


def _loop_of_passes(model: TorchMLPClassifier, X: np.ndarray, n_passes: int) -> np.ndarray:
    """The passes as the estimator used to make them: one forward pass at a time, dropout on
    through the module's training mode."""
    z = torch.from_numpy((X - model.mean_) / model.scale_)
    model.module_.train()
    try:
        with torch.no_grad():
            out = torch.stack([torch.sigmoid(model.module_(z)) for _ in range(n_passes)])
    finally:
        model.module_.eval()
    return out.numpy().astype(np.float64)


def test_batched_mc_dropout_has_the_loops_distribution(
    fitted: TorchMLPClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """One batched forward pass draws other masks than a loop of passes, from the same
    distribution: per student, mean and spread agree within Monte-Carlo error."""
    X = data[0][:6]
    n = 4000
    batched = fitted.predict_mc(X, n_passes=n).samples
    torch.manual_seed(11)
    looped = _loop_of_passes(fitted, X, n)
    assert batched.shape == looped.shape == (n, 6)
    se = np.sqrt(looped.var(axis=0) / n + batched.var(axis=0) / n)
    assert (np.abs(batched.mean(axis=0) - looped.mean(axis=0)) < 5 * se + 1e-9).all()
    np.testing.assert_allclose(batched.std(axis=0), looped.std(axis=0), rtol=0.1, atol=1e-6)
    # each row's passes depend on its own masks only: a pass is one row of one copy
    assert not np.allclose(batched[0], batched[1])


def test_mc_dropout_is_seeded_and_leaves_the_callers_rng_alone(
    fitted: TorchMLPClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X = data[0][:3]
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    first = fitted.predict_mc(X, n_passes=50).samples
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())
    np.testing.assert_array_equal(fitted.predict_mc(X, n_passes=50).samples, first)
    other = fitted.predict_mc(X, n_passes=50, random_state=9).samples
    assert not np.array_equal(other, first)
    with pytest.raises(ValueError, match="n_passes"):
        fitted.predict_mc(X, n_passes=0)


def test_proba_and_mc_match_the_checked_paths(
    fitted: TorchMLPClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X = data[0][:4]
    proba, samples = fitted.proba_and_mc(X, n_passes=30)
    np.testing.assert_allclose(proba, fitted.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(samples, fitted.predict_mc(X, n_passes=30).samples)
    with pytest.raises(ValueError, match="features"):
        fitted.proba_and_mc(X[:, :3])


def test_training_threads_are_not_taken_when_serving(data: tuple[np.ndarray, np.ndarray]) -> None:
    """``n_threads`` is the training budget; a model trained with two threads predicts on one
    (a web worker's what-if), and leaves torch's setting as it found it."""
    X, y = data
    model = TorchMLPClassifier(max_epochs=3, n_threads=2).fit(X, y)
    seen: list[int] = []
    # The first layer runs in the plain forward pass and in the batched dropout passes alike.
    model.module_.body[0].register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    model.predict_proba(X[:3])
    model.predict_mc(X[:3], n_passes=5)
    model.proba_and_mc(X[:3], n_passes=5)
    assert len(seen) == 4  # predict_proba, predict_mc, and proba_and_mc twice (P, then passes)
    assert set(seen) == {1}
    assert torch.get_num_threads() == before
