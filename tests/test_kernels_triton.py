"""Kernel lane: the fused Triton kernels against the naive reference.

On a machine without CUDA, conftest.py sets TRITON_INTERPRET=1 before triton is imported, so these run on CPU
tensors through the interpreter (tiny shapes: it is ~1000× slower than torch). With CUDA they run on the GPU.
"""

import warnings

import pytest
import torch
import triton  # noqa: F401  (a hard requirement: a broken install must fail, not skip)

from infembed.kernels import similarity_lse, similarity_lse_rowcol
from infembed.kernels.reference import naive_scores, naive_similarity_lse, naive_similarity_lse_rowcol

pytestmark = [pytest.mark.kernel, pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _inputs(m, n, d, dtype=torch.float32, seed=0, normalise=True):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(m, d, generator=gen), torch.randn(n, d, generator=gen)
    if normalise:
        q, k = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1)
    return q.to(DEVICE, dtype).requires_grad_(), k.to(DEVICE, dtype).requires_grad_()


def _finite(t):
    return torch.where(torch.isneginf(t), torch.zeros_like(t), t)


def _value_and_grads(outs, weights, q, k):
    """Outputs with -inf zeroed, and d(Σ w·out)/d(q, k) (weights ≠ 1 test grad_output handling)."""
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((_finite(o) * w).sum() for o, w in zip(outs, weights))
    return [_finite(o).detach() for o in outs], torch.autograd.grad(loss, (q, k))


def _weights(*sizes):
    gen = torch.Generator().manual_seed(7)
    return [torch.randn(s, generator=gen).to(DEVICE) for s in sizes]


# (M, N, D): 1×1; non-powers of two; M ≠ N; D over several BLOCK_D chunks; several row/column blocks
SHAPES = [(1, 1, 1), (5, 7, 3), (17, 33, 20), (40, 37, 70)]


@pytest.mark.parametrize("m,n,d", SHAPES)
@pytest.mark.parametrize("exclude,offset", [(False, 0), (True, 0), (True, 3), (True, -4)])
def test_lse_matches_reference(m, n, d, exclude, offset):
    q, k = _inputs(m, n, d, normalise=False)
    w = _weights(m)
    got, (dq, dk) = _value_and_grads(similarity_lse(q, k, 2.0, exclude, "triton", offset), w, q, k)
    ref, (rq, rk) = _value_and_grads(naive_similarity_lse(q, k, 2.0, exclude, offset), w, q, k)
    assert got[0].dtype == torch.float32 and dq.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close((dq, dk), (rq, rk), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("exclude", [False, True])
def test_lse_large_logits_scale_100(exclude):
    q, k = _inputs(19, 19, 24)
    w = _weights(19)
    got, grads = _value_and_grads(similarity_lse(q, k, 100.0, exclude, "triton"), w, q, k)
    ref, rgrads = _value_and_grads(naive_similarity_lse(q.double(), k.double(), 100.0, exclude), w, q, k)
    assert all(torch.isfinite(g).all() for g in grads)
    torch.testing.assert_close(got[0].double(), ref[0], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(
        [g.double() for g in grads], [g.double() for g in rgrads], atol=1e-3, rtol=1e-4
    )


def test_fully_masked_row_is_minus_inf_and_has_zero_grad():
    q, k = _inputs(3, 2, 5)
    lse = similarity_lse(
        q, k, 4.0, True, "triton", -2
    )  # row 2 excludes column 0 only; 1×1 below excludes all
    torch.testing.assert_close(lse, naive_similarity_lse(q, k, 4.0, True, -2))
    q1, k1 = _inputs(1, 1, 4)
    lse1 = similarity_lse(q1, k1, 4.0, True, "triton")
    assert torch.isneginf(lse1).all()
    dq, dk = torch.autograd.grad(_finite(lse1).sum(), (q1, k1))
    assert not dq.any() and not dk.any()


@pytest.mark.parametrize(
    "m,n,d,exclude", [(1, 1, 1, False), (70, 45, 33, False), (70, 70, 17, True), (9, 9, 6, True)]
)
@pytest.mark.parametrize("which", ["both", "row", "col"])
def test_rowcol_matches_reference(m, n, d, exclude, which):
    """70 rows = 3 row blocks on 2 persistent programs: the column partials merge across row blocks."""
    q, k = _inputs(m, n, d)
    outs = similarity_lse_rowcol(q, k, 20.0, exclude, "triton")
    w = _weights(m, n)
    w = {"both": w, "row": [w[0], 0 * w[1]], "col": [0 * w[0], w[1]]}[which]
    got, (dq, dk) = _value_and_grads(outs, w, q, k)
    ref, (rq, rk) = _value_and_grads(naive_similarity_lse_rowcol(q, k, 20.0, exclude), w, q, k)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close((dq, dk), (rq, rk), atol=1e-4, rtol=1e-4)


def test_rowcol_single_output_backward():
    q, k = _inputs(11, 13, 9)
    row, _ = similarity_lse_rowcol(q, k, 5.0, backend="triton")
    dq, dk = torch.autograd.grad(row.sum(), (q, k))
    rq, rk = torch.autograd.grad(naive_similarity_lse(q, k, 5.0).sum(), (q, k))
    torch.testing.assert_close((dq, dk), (rq, rk), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs(dtype):
    """fp32 outputs; values and grads as close to the fp64 truth as torch's own computation in that dtype."""
    q, k = _inputs(21, 18, 40, dtype)
    w = _weights(21, 18)
    got, grads = _value_and_grads(similarity_lse_rowcol(q, k, 20.0, False, "triton"), w, q, k)
    assert got[0].dtype == torch.float32 and grads[0].dtype == dtype
    truth, tgrads = _value_and_grads(naive_similarity_lse_rowcol(q.double(), k.double(), 20.0), w, q, k)
    torch_vals, torch_grads = _value_and_grads(naive_similarity_lse_rowcol(q, k, 20.0), w, q, k)
    for a, b, t in zip(got + list(grads), torch_vals + list(torch_grads), truth + list(tgrads)):
        assert (a.double() - t).abs().max() <= 2 * (b.double() - t).abs().max() + 1e-2


def test_non_contiguous_inputs():
    q, k = _inputs(12, 10, 8)
    qt, kt = q.detach().T.contiguous().T[:, :6], k.detach()[:, :6]  # column-major q; k with row stride 8
    torch.testing.assert_close(
        similarity_lse(qt, kt, 3.0, backend="triton"), naive_similarity_lse(qt, kt, 3.0), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("exclude", [False, True])
def test_with_max_matches_reference_maxima(exclude):
    """70 rows on 2 persistent programs: the column maxima merge across row blocks like the column lse."""
    q, k = _inputs(70, 70, 17)
    row, col, row_max, col_max = similarity_lse_rowcol(q, k, 20.0, exclude, "triton", with_max=True)
    s = naive_scores(q.detach(), k.detach(), 20.0, exclude)  # (M, N)
    torch.testing.assert_close((row_max, col_max), (s.amax(1), s.amax(0)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        (row, col), naive_similarity_lse_rowcol(q, k, 20.0, exclude), atol=1e-5, rtol=1e-5
    )
    _, lse_max = similarity_lse(q, k, 20.0, True, "triton", -5, with_max=True)
    s = naive_scores(q.detach(), k.detach(), 20.0, True, -5)
    torch.testing.assert_close(lse_max, s.amax(1), atol=1e-5, rtol=1e-5)


def test_misaligned_storage_and_odd_d_are_padded():
    """A storage offset of one element and D = 13: the op copies to an aligned, padded buffer."""
    q, k = _inputs(10, 12, 14)
    qv, kv = q.detach()[:, 1:], k.detach()[:, 1:]  # (M, 13), (N, 13), data_ptr off by 4 bytes
    qv.requires_grad_(), kv.requires_grad_()
    w = _weights(10)
    got, grads = _value_and_grads(similarity_lse(qv, kv, 3.0, True, "triton", 1), w, qv, kv)
    ref, rgrads = _value_and_grads(naive_similarity_lse(qv, kv, 3.0, True, 1), w, qv, kv)
    assert grads[0].shape == (10, 13)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads, rgrads, atol=1e-4, rtol=1e-4)


def test_self_check_passes_on_the_real_kernels():
    from infembed.kernels import triton_ops
    from infembed.kernels.selfcheck import triton_self_check

    assert triton_self_check(torch.device(DEVICE), triton_ops) is None


def test_auto_falls_back_to_chunked_with_one_warning_when_the_self_check_fails(monkeypatch):
    """auto treats this device as a GPU; the kernels are made to forget the masked diagonal."""
    from infembed.kernels import dispatch, triton_ops

    monkeypatch.setattr(dispatch, "_TRITON_CHECKED", {})
    monkeypatch.setattr(dispatch, "_triton_eligible", lambda device, dtype: True)
    real = triton_ops.triton_similarity
    monkeypatch.setattr(
        triton_ops, "triton_similarity", lambda q, k, scale, exclude, *rest: real(q, k, scale, False, *rest)
    )
    q, k = _inputs(6, 6, 5)
    with pytest.warns(RuntimeWarning, match="failed their self-check.*lse error.*using 'chunked'"):
        assert dispatch.resolve_backend("auto", DEVICE, torch.float32) == "chunked"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second use neither re-checks nor warns
        got = similarity_lse(q, k, 4.0, True, "auto")
    assert torch.equal(got, similarity_lse(q, k, 4.0, True, "chunked"))
    assert {str(torch.device(DEVICE)): False} == dispatch._TRITON_CHECKED


def test_auto_uses_triton_when_the_self_check_passes(monkeypatch):
    from infembed.kernels import dispatch

    monkeypatch.setattr(dispatch, "_TRITON_CHECKED", {})
    monkeypatch.setattr(dispatch, "_triton_eligible", lambda device, dtype: True)
    assert dispatch.resolve_backend("auto", DEVICE, torch.bfloat16) == "triton"
