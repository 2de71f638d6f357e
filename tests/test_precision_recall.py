"""ganzoo's precision and recall (torch-fidelity's, through ganzoo.metrics.scores) and density and coverage (ganzoo's)
against direct computations of their definitions (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric
for Assessing Generative Models"; Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
Models"), on feature vectors drawn from two partly overlapping Gaussians; and a declared metric reaching every place
that shows scores."""

import pytest
import torch

from ganzoo.metrics import Scores, scores

K = 3


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Each vector's distance to its k-th nearest neighbour among the others of its own set (itself left out)."""
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    return d.sort(dim=1).values[:, k - 1]


def covered(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each point: whether it lies in at least one ball (centre, radius) of the other set."""
    return (torch.cdist(points, centres) <= radii[None, :]).any(dim=1)


def definition(fake: torch.Tensor, real: torch.Tensor, k: int = K) -> tuple[float, float]:
    precision = covered(fake, real, knn_radii(real, k)).double().mean().item()  # fakes inside the real manifold
    recall = covered(real, fake, knn_radii(fake, k)).double().mean().item()  # reals inside the generated manifold
    return precision, recall


def two_gaussians(n: int, dim: int, shift: float, spread: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, dim, generator=g, dtype=torch.float64)
    fake = shift + spread * torch.randn(n, dim, generator=g, dtype=torch.float64)  # narrower and off-centre: a partial mode drop
    return fake, real


@pytest.mark.parametrize("n,dim,shift,spread,seed", [(300, 16, 0.4, 0.6, 0), (200, 8, 0.8, 1.3, 1), (250, 32, 0.3, 0.7, 2)])
def test_precision_and_recall_follow_the_definition(n, dim, shift, spread, seed):
    fake, real = two_gaussians(n, dim, shift, spread, seed)
    got = scores(fake, real, seed=0)
    want_p, want_r = definition(fake, real)
    assert 0.0 < want_p < 1.0 and 0.0 < want_r < 1.0  # a case where both can be wrong in either direction
    assert got["precision"] == pytest.approx(want_p, abs=1 / (2 * n)), (got["precision"], want_p)
    assert got["recall"] == pytest.approx(want_r, abs=1 / (2 * n)), (got["recall"], want_r)
    assert got["protocol_extra"]["precision_recall"] == {"k": K, "n_each": n, "features": "the same 2048-d Inception features"}


def test_the_direct_computation_tells_the_usual_mistakes_apart():
    """The comparison above can fail: another k, swapped roles, or the point itself counted as a neighbour each give
    other numbers on this case than the definition does."""
    fake, real = two_gaussians(300, 16, 0.4, 0.6, 0)
    p, r = definition(fake, real)
    assert p > r  # narrower fakes: most of them are real-looking, few real images are covered
    assert definition(fake, real, k=2) != (p, r) and definition(fake, real, k=5) != (p, r)
    assert definition(real, fake)[::-1] != (p, r) or definition(real, fake) != (p, r)
    self_counted = covered(fake, real, torch.cdist(real, real).sort(dim=1).values[:, K - 1]).double().mean().item()
    assert self_counted != p


def test_precision_and_recall_use_a_real_subset_as_large_as_the_generated_set():
    """With more real vectors than generated ones, the real side is a seeded subset of the generated set's size."""
    fake, real = two_gaussians(400, 16, 0.4, 0.6, 3)
    fake = fake[:150]
    got = scores(fake, real, seed=0)
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:150]
    want_p, want_r = definition(fake, real[pick])
    assert got["protocol_extra"]["precision_recall"]["n_each"] == 150
    assert got["precision"] == pytest.approx(want_p, abs=1 / 300) and got["recall"] == pytest.approx(want_r, abs=1 / 300)


def test_the_zoo_s_k_nn_statistics_explain_the_same_precision_and_recall():
    """bench/quality_budget.knn_stats (the radii the zoo records beside each score) counts the same balls as the metric."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("quality_budget", Path(__file__).resolve().parents[1] / "bench" / "quality_budget.py")
    qb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qb)
    fake, real = two_gaussians(300, 16, 0.4, 0.6, 0)
    stats = qb.knn_stats(fake, real)
    p, r = definition(fake, real)
    assert stats["precision_from_balls"] == pytest.approx(p, abs=1 / 600) and stats["recall_from_balls"] == pytest.approx(r, abs=1 / 600)
    assert stats["radius_generated_median"] < stats["radius_real_median"]  # the narrower set has the smaller balls
    assert stats["real_over_generated_balls_median"] > 1 > stats["generated_over_real_balls_median"]  # recall low, precision high
    assert torch.allclose(qb.knn_radii(real), knn_radii(real, K).float(), rtol=1e-5)


def density_coverage_by_hand(fake: torch.Tensor, real: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Naeem et al.'s formulas, one pair of images at a time."""
    radii = knn_radii(real, k)  # each real image's distance to its k-th nearest other real image
    density = sum(float(torch.dist(y, x)) <= float(r) for y in fake for x, r in zip(real, radii)) / (k * len(fake))
    coverage = sum(any(float(torch.dist(y, x)) <= float(r) for y in fake) for x, r in zip(real, radii)) / len(real)
    return density, coverage


@pytest.mark.parametrize("n,dim,shift,spread,seed", [(60, 8, 0.4, 0.6, 0), (50, 4, 0.8, 1.3, 1)])
def test_density_and_coverage_follow_the_definition(n, dim, shift, spread, seed):
    fake, real = two_gaussians(n, dim, shift, spread, seed)
    got = scores(fake, real, seed=0)  # equal sizes: the real subset is every real vector, in another order
    density, coverage = density_coverage_by_hand(fake.float(), real.float())
    assert 0.0 < coverage < 1.0 and density > 0.0
    assert got["density"] == pytest.approx(density, abs=1e-9) and got["coverage"] == pytest.approx(coverage, abs=1e-9)
    assert got["protocol_extra"]["density_coverage"]["k"] == 5
    same = scores(real, real, seed=0)  # a set against itself covers every ball
    assert same["coverage"] == 1.0 and same["density"] >= 1.0


def test_a_declared_metric_reaches_the_console_the_report_and_the_card():
    result = {"fid": 12.5, "kid_mean": 0.01, "kid_std": 0.001, "precision": 0.5, "recall": 0.25, "density": 0.875,
              "coverage": 0.625, "protocol": {"n_generated": 1000, "n_real": 1000, "reference": {"size": 5000}}}
    scores_ = Scores.of(result)
    assert scores_.rows()["density / coverage"] == "0.875 / 0.625"
    assert "density 0.875, coverage 0.625" in scores_.line()
    assert {"type": "coverage", "name": "coverage@1000", "value": 0.625} in scores_.card_metrics()
    assert scores_.flat()["density"] == 0.875
