"""CPU lane: the naive reference (gradcheck in float64) and the chunked backend against it."""

from pathlib import Path

import pytest
import torch

from infembed.kernels import (
    BACKENDS,
    BackendUnavailableError,
    KernelInputError,
    resolve_backend,
    similarity_lse,
    similarity_lse_rowcol,
)
from infembed.kernels.chunked import chunked_similarity, default_block_rows
from infembed.kernels.reference import naive_scores, naive_similarity_lse, naive_similarity_lse_rowcol

ROOT = Path(__file__).resolve().parents[1]


def _inputs(m, n, d, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(m, d, generator=gen, dtype=torch.float64), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(n, d, generator=gen, dtype=torch.float64), dim=-1)
    return q.to(dtype).requires_grad_(), k.to(dtype).requires_grad_()


def _brute_lse(q, k, scale, exclude, offset):
    """Python-loop definition: log Σ_j exp(scale q_i·k_j) over kept j."""
    out = []
    for i in range(q.shape[0]):
        terms = [scale * float(q[i] @ k[j]) for j in range(k.shape[0]) if not (exclude and j == i + offset)]
        out.append(
            torch.tensor(terms, dtype=torch.float64).logsumexp(0) if terms else torch.tensor(float("-inf"))
        )
    return torch.stack(out)


@pytest.mark.parametrize("exclude,offset", [(False, 0), (True, 0), (True, 3), (True, -2)])
def test_reference_matches_definition(exclude, offset):
    q, k = _inputs(5, 9, 7, torch.float64)
    got = naive_similarity_lse(q, k, 20.0, exclude, offset)
    torch.testing.assert_close(got, _brute_lse(q.detach(), k.detach(), 20.0, exclude, offset).to(got.dtype))


def test_reference_rowcol_is_rows_of_s_and_of_s_transposed():
    q, k = _inputs(6, 4, 5, torch.float64)
    row, col = naive_similarity_lse_rowcol(q, k, 3.0)
    torch.testing.assert_close(row, naive_similarity_lse(q, k, 3.0))
    torch.testing.assert_close(col, naive_similarity_lse(k, q, 3.0))


@pytest.mark.parametrize("exclude,offset", [(False, 0), (True, 1)])
def test_reference_gradcheck(exclude, offset):
    q, k = _inputs(4, 5, 3, torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: naive_similarity_lse(a, b, 2.0, exclude, offset), (q, k))
    q, k = _inputs(4, 4, 3, torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: naive_similarity_lse_rowcol(a, b, 2.0, exclude), (q, k))


def test_fully_masked_row_is_minus_inf_with_zero_grad():
    q, k = _inputs(1, 1, 4)
    for backend in ("naive", "chunked"):
        lse = similarity_lse(q, k, 5.0, exclude_diagonal=True, backend=backend)
        assert torch.isneginf(lse).all()
        lse.masked_fill(torch.isneginf(lse), 0.0).sum().backward()
        assert torch.equal(q.grad, torch.zeros_like(q)) and torch.equal(k.grad, torch.zeros_like(k))
        q.grad = k.grad = None


def _grads(fn, q, k, weights):
    outs = fn(q, k)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o * w).sum() for o, w in zip(outs, weights))
    dq, dk = torch.autograd.grad(loss, (q, k))
    return outs, dq, dk


@pytest.mark.parametrize("m,n,d,block", [(1, 1, 1, None), (7, 13, 5, 3), (33, 17, 24, 8), (16, 16, 10, 16)])
@pytest.mark.parametrize("exclude,offset", [(False, 0), (True, 0), (True, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_chunked_matches_naive(m, n, d, block, exclude, offset, dtype):
    q, k = _inputs(m, n, d, dtype)
    weights = (torch.randn(m, generator=torch.Generator().manual_seed(1)),)
    ref, rdq, rdk = _grads(
        lambda a, b: naive_similarity_lse(a.double(), b.double(), 50.0, exclude, offset), q, k, weights
    )
    got, dq, dk = _grads(
        lambda a, b: chunked_similarity(a, b, 50.0, exclude, offset, False, False, block)[0], q, k, weights
    )
    assert got[0].dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert dq.dtype == dtype and dk.dtype == dtype
    tol = {torch.float64: 1e-10, torch.float32: 1e-4, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(got[0].double(), ref[0], atol=tol, rtol=tol)
    torch.testing.assert_close(dq.double(), rdq.to(dq.dtype).double(), atol=tol * 10, rtol=tol)
    torch.testing.assert_close(dk.double(), rdk.to(dk.dtype).double(), atol=tol * 10, rtol=tol)


@pytest.mark.parametrize(
    "m,n,d,block,exclude", [(1, 1, 3, None, False), (9, 14, 6, 4, False), (12, 12, 5, 5, True)]
)
@pytest.mark.parametrize("which", ["both", "row", "col"])
def test_chunked_rowcol_matches_naive(m, n, d, block, exclude, which):
    q, k = _inputs(m, n, d, torch.float64)
    gen = torch.Generator().manual_seed(2)
    w = (
        torch.randn(m, generator=gen, dtype=torch.float64),
        torch.randn(n, generator=gen, dtype=torch.float64),
    )
    w = {"both": w, "row": (w[0], 0 * w[1]), "col": (0 * w[0], w[1])}[which]
    ref, rdq, rdk = _grads(lambda a, b: naive_similarity_lse_rowcol(a, b, 20.0, exclude), q, k, w)
    got, dq, dk = _grads(
        lambda a, b: chunked_similarity(a, b, 20.0, exclude, 0, True, False, block)[:2], q, k, w
    )
    finite = [torch.where(torch.isneginf(t), 0.0, t) for t in ref + got]
    torch.testing.assert_close(finite[2:], finite[:2])
    torch.testing.assert_close((dq, dk), (rdq, rdk))


def test_chunked_only_one_output_used_gets_right_grad():
    q, k = _inputs(6, 8, 4, torch.float64)
    row, _col, _, _ = chunked_similarity(q, k, 4.0, False, 0, True, False, block_rows=4)
    dq, dk = torch.autograd.grad(row.sum(), (q, k))
    rq, rk = torch.autograd.grad(naive_similarity_lse(q, k, 4.0).sum(), (q, k))
    torch.testing.assert_close((dq, dk), (rq, rk))


def test_default_block_rows_respects_budget():
    assert default_block_rows(16384, 16384) == 1024
    assert default_block_rows(5, 16384) == 5
    assert default_block_rows(10**6, 10**9) == 1


def test_dispatch_backends_agree_and_auto_is_chunked_on_cpu_and_for_float64():
    assert BACKENDS == ("auto", "naive", "chunked", "triton")
    assert resolve_backend("auto", "cpu") == "chunked"
    assert resolve_backend("auto", "cuda", torch.float64) == "chunked"  # the kernels take no float64
    assert resolve_backend("naive", torch.device("cpu")) == "naive"
    q, k = _inputs(5, 5, 3)
    torch.testing.assert_close(
        similarity_lse(q, k, 10.0, True, "auto", 0), similarity_lse(q, k, 10.0, True, "naive")
    )
    torch.testing.assert_close(
        similarity_lse_rowcol(q, k, 10.0, backend="chunked"),
        similarity_lse_rowcol(q, k, 10.0, backend="naive"),
    )


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda q, k: similarity_lse(q, k, 1.0, backend="cuda"),
            "expected one of auto, naive, chunked, triton",
        ),
        (lambda q, k: similarity_lse(q[0], k, 1.0), "q: got shape"),
        (lambda q, k: similarity_lse(q, k[:, :2], 1.0), "embedding dims differ"),
        (lambda q, k: similarity_lse(q, k.double(), 1.0), "same dtype and device"),
        (lambda q, k: similarity_lse(q.long(), k.long(), 1.0), "q: got dtype"),
        (lambda q, k: similarity_lse(q, k, float("nan")), "scale"),
        (lambda q, k: similarity_lse(q, k, torch.tensor(2.0, requires_grad=True)), "scale"),
        (lambda q, k: similarity_lse(q, k, 1.0, diagonal_offset=1.5), "diagonal_offset"),
        (lambda q, k: similarity_lse_rowcol(q, k[:3], 1.0, exclude_diagonal=True), "needs M == N"),
        (
            lambda q, k: similarity_lse(q.double(), k.double(), 1.0, backend="triton"),
            "backend 'triton' got dtype",
        ),
    ],
)
def test_bad_input_raises_clear_error(call, match):
    q, k = _inputs(4, 4, 3)
    with pytest.raises(KernelInputError, match=match):
        call(q.detach(), k.detach())


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    q, k = _inputs(2, 2, 3)
    with pytest.raises(BackendUnavailableError, match="TRITON_INTERPRET=1"):
        similarity_lse(q, k, 1.0, backend="triton")


def test_missing_triton_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "triton" else object())
    q, k = _inputs(2, 2, 3)
    with pytest.raises(BackendUnavailableError, match="not installed"):
        similarity_lse(q, k, 1.0, backend="triton")
    assert resolve_backend("auto", "cuda") == "chunked"


@pytest.mark.e2e
def test_import_does_not_import_triton():
    import subprocess
    import sys

    code = "import sys, infembed.kernels; assert 'triton' not in sys.modules, 'triton imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_double_backward_is_refused_not_silently_wrong():
    q, k = _inputs(3, 3, 2, torch.float64)
    (dq,) = torch.autograd.grad(
        chunked_similarity(q, k, 2.0, False, 0, False, False)[0].sum(), (q,), create_graph=True
    )
    with pytest.raises(RuntimeError, match="once_differentiable|not differentiable|does not require grad"):
        dq.sum().backward()


@pytest.mark.parametrize("backend", ["naive", "chunked"])
@pytest.mark.parametrize("exclude,offset", [(False, 0), (True, 0), (True, -3)])
def test_with_max_gives_the_row_and_column_maxima_of_s(backend, exclude, offset):
    q, k = _inputs(7, 9, 5)
    s = naive_scores(q.detach(), k.detach(), 20.0, exclude, offset)  # (M, N)
    lse, row_max = similarity_lse(q, k, 20.0, exclude, backend, offset, with_max=True)
    torch.testing.assert_close(lse, similarity_lse(q, k, 20.0, exclude, "naive", offset))
    assert torch.equal(row_max, s.amax(1)) and not row_max.requires_grad
    q, k = _inputs(6, 6, 4)
    s = naive_scores(q.detach(), k.detach(), 20.0, exclude)  # (N, N)
    row, col, row_max, col_max = similarity_lse_rowcol(q, k, 20.0, exclude, backend, with_max=True)
    torch.testing.assert_close((row, col), similarity_lse_rowcol(q, k, 20.0, exclude, "naive"))
    assert torch.equal(row_max, s.amax(1)) and torch.equal(col_max, s.amax(0))
    (row.sum() + col.sum()).backward()  # the maxima ride along without breaking the graph
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_fully_masked_row_max_is_minus_inf():
    q, k = _inputs(1, 1, 3)
    for backend in ("naive", "chunked"):
        _, row_max = similarity_lse(q, k, 5.0, True, backend, with_max=True)
        assert torch.isneginf(row_max).all()


@pytest.mark.parametrize("backend", ["naive", "chunked"])
def test_autocast_rounds_inputs_once_then_runs_the_backend_as_on_bf16(backend):
    """Under bf16 autocast every backend sees the bf16-rounded inputs (and nothing else changes); chunked then
    keeps fp32 scores (autocast would have rounded them to bf16), and the gradients reach the fp32 leaves."""
    q, k = _inputs(9, 11, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lse = similarity_lse(q, k, 20.0, True, backend, 2)
    qb, kb = q.detach().bfloat16(), k.detach().bfloat16()
    assert torch.equal(lse, similarity_lse(qb, kb, 20.0, True, backend, 2)) and lse.dtype == torch.float32
    if backend == "chunked":
        truth = naive_similarity_lse(qb.double(), kb.double(), 20.0, True, 2)
        torch.testing.assert_close(lse.double(), truth, atol=1e-5, rtol=1e-6)
    (dq,) = torch.autograd.grad(lse.sum(), (q,))
    assert dq.dtype == torch.float32
