"""Structural properties of the loss family: positive counted once, multi = Σ parts, gradients, invariances."""

import pytest
import torch
import torch.nn.functional as F

from infembed.losses import LOSS_NAMES, LossInputError, UnknownLossError, blocks, build_loss

UNI = [n for n in LOSS_NAMES if n.startswith("uni_")]
MULTI = [n for n in LOSS_NAMES if n.startswith("multi_")]


def _batch(n=6, k=3, d=8, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=-1)  # (N, D)
    p = F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=-1)  # (N, D)
    zs = F.normalize(torch.randn(n, k, d, generator=g, dtype=dtype), dim=-1)  # (N, K, D)
    mask = torch.rand(n, k, generator=g) > 0.3  # (N, K)
    return z, p, zs, mask


def _union_softmax_loss(name, z, p, zs, mask, tau):
    """−log softmax over an explicitly concatenated candidate list that holds the positive exactly once."""
    rows = []
    for i in range(z.shape[0]):
        pos = z[i] @ p[i] / tau
        cands = [pos]
        if "p" in name.split("_"):
            cands += [z[i] @ p[j] / tau for j in range(z.shape[0]) if j != i]
        if "iq" in name.split("_"):
            cands += [p[i] @ z[j] / tau for j in range(z.shape[0]) if j != i]
        if "i" in name.split("_"):
            cands += [zs[i, k] @ p[i] / tau for k in range(zs.shape[1]) if mask[i, k]]
        rows.append(-torch.log_softmax(torch.stack(cands), 0)[0])
    return torch.stack(rows).mean()


@pytest.mark.parametrize("name", UNI)
def test_uni_counts_positive_once(name):
    z, p, zs, mask = _batch()
    got = build_loss(name, temperature=0.1)(z, p, zs, mask).loss
    assert got.item() == pytest.approx(_union_softmax_loss(name, z, p, zs, mask, 0.1).item(), rel=1e-5)


def test_uni_p_iq_differs_from_positive_counted_twice():
    z, p, _, _ = _batch()
    s = z @ p.T / 0.1  # (N, N)
    twice = (torch.logaddexp(s.logsumexp(1), s.logsumexp(0)) - s.diagonal()).mean()
    once = build_loss("uni_p_iq", temperature=0.1)(z, p).loss
    assert once.item() < twice.item() - 1e-3


@pytest.mark.parametrize("name", MULTI)
def test_multi_is_sum_of_its_conditionals(name):
    z, p, zs, mask = _batch(seed=1)
    parts = [build_loss(f"uni_{b}")(z, p, zs, mask).loss for b in name.split("_")[1:]]
    assert build_loss(name)(z, p, zs, mask).loss.item() == pytest.approx(sum(parts).item(), rel=1e-5)


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("tau,n,k,d", [(0.01, 6, 3, 8), (0.05, 384, 7, 48)])
def test_gradients_finite(name, tau, n, k, d):
    z, p, zs, mask = _batch(n, k, d, seed=2)
    mask[0] = False  # a row whose instruction negatives are all padding
    leaves = [t.clone().requires_grad_() for t in (z, p, zs)]
    out = build_loss(name, temperature=tau)(*leaves, mask)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    used = leaves if "i" in name.split("_") else leaves[:2]
    for t in used:
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    assert all(torch.isfinite(v) for v in out.logs.values())


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_batch_permutation_invariance(name):
    z, p, zs, mask = _batch(seed=3)
    perm = torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(0))
    loss_fn = build_loss(name)
    a, b = loss_fn(z, p, zs, mask), loss_fn(z[perm], p[perm], zs[perm], mask[perm])
    assert a.loss.item() == pytest.approx(b.loss.item(), rel=1e-6)
    for key in a.logs:
        assert a.logs[key].item() == pytest.approx(b.logs[key].item(), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", [n for n in LOSS_NAMES if "i" in n.split("_")])
def test_swap_mask_drops_padding_slots(name):
    z, p, zs, _ = _batch(k=4, seed=4)
    mask = torch.ones(z.shape[0], 4, dtype=torch.bool)
    mask[:, 2:] = False
    garbage = zs.clone()
    garbage[:, 2:] = p[:, None, :] * 3.0  # would dominate the softmax if it were counted
    loss_fn = build_loss(name)
    masked = loss_fn(z, p, garbage, mask)
    trimmed = loss_fn(z, p, zs[:, :2].contiguous())
    assert masked.loss.item() == pytest.approx(trimmed.loss.item(), rel=1e-6)
    assert masked.logs["negatives"].item() == pytest.approx(trimmed.logs["negatives"].item(), rel=1e-5)


def test_fully_padded_row_gives_zero_instruction_conditional():
    z, p, zs, _ = _batch(seed=5)
    mask = torch.zeros(zs.shape[:2], dtype=torch.bool)
    out = build_loss("uni_i")(z, p, zs, mask)
    assert out.loss.item() == 0.0
    assert out.logs["negatives"].item() == 0.0


def test_needs_swaps_iff_instruction_conditional():
    for name in LOSS_NAMES:
        assert build_loss(name).needs_swaps == ("i" in name.split("_")[1:])


@pytest.mark.parametrize(
    "name,expected",
    [
        ("uni_i", {"lse": 0, "rowcol": 0}),
        ("uni_p", {"lse": 1, "rowcol": 0}),
        ("uni_iq", {"lse": 1, "rowcol": 0}),
        ("multi_p_i_iq", {"lse": 0, "rowcol": 1}),
        ("uni_p_iq", {"lse": 0, "rowcol": 1}),
    ],
)
def test_only_needed_blocks_are_computed(monkeypatch, name, expected):
    calls = {"lse": 0, "rowcol": 0}

    def counting(key, fn):
        def wrapped(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(blocks, "similarity_lse", counting("lse", blocks.similarity_lse))
    monkeypatch.setattr(blocks, "similarity_lse_rowcol", counting("rowcol", blocks.similarity_lse_rowcol))
    z, p, zs, mask = _batch(seed=6)
    build_loss(name)(z, p, zs, mask)
    assert calls == expected


def test_kernel_name_is_forwarded(monkeypatch):
    seen = []

    def spy(*args, backend="auto", **kwargs):
        seen.append(backend)
        return original(*args, backend=backend, **kwargs)

    original = blocks.similarity_lse
    monkeypatch.setattr(blocks, "similarity_lse", spy)
    z, p, _, _ = _batch()
    build_loss("uni_p", kernel="naive")(z, p)
    assert seen == ["naive"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownLossError, match="multi_p_i_iq") as err:
        build_loss("multi_q")
    assert isinstance(err.value, ValueError)
    assert all(n in str(err.value) for n in LOSS_NAMES)


def test_bad_temperature_rejected():
    with pytest.raises(ValueError, match="temperature"):
        build_loss("uni_p", temperature=0.0)


@pytest.mark.parametrize("name", ["uni_i", "multi_p_i", "uni_p_i_iq"])
def test_swap_loss_without_swaps_raises(name):
    z, p, _, _ = _batch()
    with pytest.raises(LossInputError, match="iq_swapped"):
        build_loss(name)(z, p)


def test_bad_shapes_raise_clear_errors():
    z, p, zs, mask = _batch()
    with pytest.raises(LossInputError, match=r"passages \(5, 8\)"):
        build_loss("uni_p")(z, p[:5])
    with pytest.raises(LossInputError, match="iq_swapped must be"):
        build_loss("uni_i")(z, p, zs[:, :, :4])
    with pytest.raises(LossInputError, match="swap_mask"):
        build_loss("uni_i")(z, p, zs, mask.float())


def test_bf16_inputs_give_float32_loss_close_to_fp32():
    z, p, zs, mask = _batch(seed=7)
    fp32 = build_loss("multi_p_i_iq")(z, p, zs, mask).loss
    bf16 = build_loss("multi_p_i_iq")(z.bfloat16(), p.bfloat16(), zs.bfloat16(), mask).loss
    assert bf16.dtype == torch.float32
    assert bf16.item() == pytest.approx(fp32.item(), rel=2e-2)


@pytest.mark.parametrize("name", ["uni_p_iq", "multi_p_i_iq"])
def test_kernel_backends_agree(name):
    z, p, zs, mask = _batch(n=33, seed=8)
    naive, chunked = (build_loss(name, kernel=b)(z, p, zs, mask).loss for b in ("naive", "chunked"))
    assert naive.item() == pytest.approx(chunked.item(), rel=1e-5)


def test_float64_inputs_give_float64_loss_with_gradcheck():
    z, p, zs, mask = (t.double() if t.is_floating_point() else t for t in _batch(n=5, k=2, d=4, seed=9))
    leaves = [t.clone().requires_grad_() for t in (z, p, zs)]
    loss_fn = build_loss("uni_p_i_iq", temperature=0.5, kernel="naive")
    assert loss_fn(*leaves, mask).loss.dtype == torch.float64
    assert torch.autograd.gradcheck(lambda a, b, c: loss_fn(a, b, c, mask).loss, leaves)


def test_single_row_batch_has_no_in_batch_negatives():
    z, p, zs, mask = _batch(n=1, seed=10)
    leaves = [t.clone().requires_grad_() for t in (z, p)]
    out = build_loss("uni_p_iq")(*leaves)
    out.loss.backward()
    assert out.loss.item() == 0.0 and out.logs["negatives"].item() == 0.0
    assert all(torch.isfinite(t.grad).all() for t in leaves)


def test_autocast_keeps_loss_and_logs_in_float32():
    z, p, zs, mask = _batch(n=16, seed=11)
    plain = build_loss("multi_p_i_iq")(z, p, zs, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = build_loss("multi_p_i_iq")(z, p, zs, mask)
    assert mixed.loss.dtype == torch.float32
    assert mixed.loss.item() == pytest.approx(plain.loss.item(), rel=1e-2)
    for key in ("l_i",):  # computed in this package in float32, not by the (autocast) kernels
        assert mixed.logs[key].item() == pytest.approx(plain.logs[key].item(), rel=1e-5, abs=1e-6)
    # the hardest negative comes from the kernels' own pass, on bf16-rounded inputs under autocast
    assert mixed.logs["margin"].item() == pytest.approx(plain.logs["margin"].item(), abs=2e-3)
    assert mixed.logs["negatives"].item() == pytest.approx(plain.logs["negatives"].item(), rel=5e-2)


@pytest.mark.kernel
@pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter lane; the GPU lane covers CUDA")
@pytest.mark.parametrize("name", ["uni_p_iq", "multi_p_i_iq"])
def test_triton_backend_matches_naive_in_interpreter(name):
    z, p, zs, mask = _batch(n=7, k=2, d=5, seed=12)
    results = []
    for kernel in ("naive", "triton"):
        leaves = [t.clone().requires_grad_() for t in (z, p, zs)]
        out = build_loss(name, kernel=kernel)(*leaves, mask)
        out.loss.backward()
        results.append([out.loss.detach(), *(t.grad for t in leaves)])
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
