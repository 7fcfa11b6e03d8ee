"""A training step through the losses gives the same loss and parameter gradients with kernel=triton (the
interpreter on CPU) as with kernel=naive, and with kernel=chunked."""

import pytest
import torch
import triton  # noqa: F401  (a hard requirement: a broken install must fail, not skip)

from infembed import losses

from helpers import tiny_bert_encoder

pytestmark = [pytest.mark.kernel, pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")]

QUERIES = ["volcano eruption", "river delta", "glacier melt", "desert climate", "ocean tides", "forest fire"]
INSTRUCTIONS = ["for children", "in french", "as a list", "from 1900", "for experts", "as a poem"]
PASSAGES = [f"a passage about {q} written {i}" for q, i in zip(QUERIES, INSTRUCTIONS)]
K = 2


def _step(encoder, loss_name, kernel):
    """One forward + backward; returns the loss value and every parameter's gradient."""
    encoder.zero_grad()
    n = len(QUERIES)
    swaps = [(i, (i + s) % n) for i in range(n) for s in range(1, K + 1)]  # z_{i←j}: query i, instruction j
    pairs = [encoder.text.format_pair(q, i) for q, i in zip(QUERIES, INSTRUCTIONS)]
    pairs += [encoder.text.format_pair(QUERIES[i], INSTRUCTIONS[j]) for i, j in swaps]
    z = encoder(encoder.text.tokenize(pairs, "pair"), "pair")  # (n + n·K, D)
    p = encoder(encoder.text.tokenize(PASSAGES, "passage"), "passage")  # (n, D)
    iq, iq_swapped = z[:n], z[n:].view(n, K, -1)  # (n, D), (n, K, D)
    loss_fn = losses.build_loss(loss_name, temperature=0.05, kernel=kernel, gather=False)
    out = loss_fn(iq, p, iq_swapped)
    loss = out.loss if hasattr(out, "loss") else out
    loss.backward()
    return loss.detach(), {
        name: w.grad.clone() for name, w in encoder.named_parameters() if w.grad is not None
    }


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return tiny_bert_encoder().eval()  # no dropout: both steps see the same embeddings


@pytest.mark.parametrize(
    "loss_name,kernel",
    [
        ("uni_p_iq", "triton"),
        ("multi_p_i", "triton"),
        ("multi_p_i_iq", "triton"),
        ("multi_p_i_iq", "chunked"),
    ],
)
def test_training_step_matches_naive(encoder, loss_name, kernel):
    ref_loss, ref_grads = _step(encoder, loss_name, "naive")
    loss, grads = _step(encoder, loss_name, kernel)
    assert torch.isfinite(ref_loss) and len(ref_grads) > 10
    torch.testing.assert_close(loss, ref_loss, atol=1e-5, rtol=1e-5)
    assert grads.keys() == ref_grads.keys()
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)
