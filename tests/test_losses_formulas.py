"""Every loss against docs/method.md, "The three conditionals" and "The eleven losses" written out with explicit loops (independent of the implementation)."""

import math

import pytest
import torch
import torch.nn.functional as F

from infembed.losses import LOSS_NAMES, build_loss

TAU = 0.05
N, K, D = 4, 3, 5


def _embeddings(seed=0):
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(N, D, generator=g), dim=-1)  # (N, D)
    p = F.normalize(torch.randn(N, D, generator=g), dim=-1)  # (N, D)
    zs = F.normalize(torch.randn(N, K, D, generator=g), dim=-1)  # (N, K, D)
    mask = torch.ones(N, K, dtype=torch.bool)  # (N, K)
    mask[1, 2] = False  # one padding slot
    mask[3, :] = False  # a row without instruction negatives
    return z, p, zs, mask


def _s(a, b):
    return sum(float(x) * float(y) for x, y in zip(a, b)) / TAU


def _hand_sums(z, p, zs, mask, i):
    """e^{s_ii} and the three sums of docs/method.md, "The three conditionals" and "The eleven losses" for row i, each over its written index set."""
    pos = math.exp(_s(z[i], p[i]))
    over_p = sum(math.exp(_s(z[i], p[j])) for j in range(N))  # Σ_j e^{s(z_i,p_j)}
    over_iq = sum(math.exp(_s(p[i], z[j])) for j in range(N))  # Σ_j e^{s(p_i,z_j)}
    over_iq_not_i = sum(math.exp(_s(p[i], z[j])) for j in range(N) if j != i)  # Σ_{j≠i} e^{s(p_i,z_j)}
    over_s = sum(math.exp(_s(zs[i, k], p[i])) for k in range(K) if mask[i, k])  # Σ_{j∈S_i} e^{s(z_{i←j},p_i)}
    return pos, over_p, over_iq, over_iq_not_i, over_s


def _hand_loss(name, z, p, zs, mask):
    total = 0.0
    for i in range(N):
        pos, over_p, over_iq, over_iq_not_i, over_s = _hand_sums(z, p, zs, mask, i)
        l_p = -math.log(pos / over_p)
        l_iq = -math.log(pos / over_iq)
        l_i = -math.log(pos / (pos + over_s))
        row = {
            "uni_p": l_p,
            "uni_iq": l_iq,
            "uni_i": l_i,
            "uni_p_iq": -math.log(pos / (over_p + over_iq_not_i)),
            "uni_p_i": -math.log(pos / (over_p + over_s)),
            "uni_i_iq": -math.log(pos / (over_iq + over_s)),
            "uni_p_i_iq": -math.log(pos / (over_p + over_iq_not_i + over_s)),
            "multi_p_iq": l_p + l_iq,
            "multi_p_i": l_p + l_i,
            "multi_i_iq": l_i + l_iq,
            "multi_p_i_iq": l_p + l_i + l_iq,
        }[name]
        total += row
    return total / N


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_matches_hand_computation(name):
    z, p, zs, mask = _embeddings()
    out = build_loss(name, temperature=TAU)(z, p, zs, mask)
    assert out.loss.dim() == 0
    assert out.loss.item() == pytest.approx(_hand_loss(name, z, p, zs, mask), rel=1e-5)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_logged_conditionals_match_hand_computation(name):
    z, p, zs, mask = _embeddings(1)
    out = build_loss(name, temperature=TAU)(z, p, zs, mask)
    parts = {"l_p": "uni_p", "l_iq": "uni_iq", "l_i": "uni_i"}
    expected = {key: _hand_loss(single, z, p, zs, mask) for key, single in parts.items() if key in out.logs}
    assert set(expected) == {f"l_{b}" for b in name.split("_")[1:]}
    for key, value in expected.items():
        assert out.logs[key].item() == pytest.approx(value, rel=1e-5)
        assert not out.logs[key].requires_grad


def test_margin_and_effective_negatives_by_hand():
    z, p, zs, mask = _embeddings(2)
    out = build_loss("uni_p_i", temperature=TAU)(z, p, zs, mask)
    margins, n_effs = [], []
    for i in range(N):
        negatives = [_s(z[i], p[j]) for j in range(N) if j != i]
        negatives += [_s(zs[i, k], p[i]) for k in range(K) if mask[i, k]]
        hardest = max(negatives)
        margins.append((_s(z[i], p[i]) - hardest) * TAU)
        n_effs.append(sum(math.exp(s - hardest) for s in negatives))
    assert out.logs["margin"].item() == pytest.approx(sum(margins) / N, abs=1e-5)
    assert out.logs["negatives"].item() == pytest.approx(sum(n_effs) / N, rel=1e-5)
    assert 1.0 <= out.logs["negatives"].item() <= N - 1 + K
