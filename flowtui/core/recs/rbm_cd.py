"""One CD-k step of the RBM on a mini-batch: the gradients of its three kinds of batch.

`masked_step` (explicit data: every product over the observed entries only), `implicit_step` (a sparse
batch whose unseen entries are weak negatives of weight w) and `dense_negative_step` (a fully observed dense
batch, or implicit mode computed densely: the reference of `implicit_step`). Each returns the gradient SUMS
over the batch's rows ([gW, gb, ge, gc, gd], then the catalogue weights' when learnt), the summed
reconstruction error and the hidden probabilities of the data; `RBM.compute_update` applies none of them.
`transposed_products` is the weight gradient's transposed sparse product. torch is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from flowtui.core.recs.rbm_source import Batch

if TYPE_CHECKING:
    import torch

    from flowtui.core.recs.rbm import RBM

__all__ = ["dense_negative_step", "implicit_step", "masked_step", "transposed_products"]


def masked_step(
    net: RBM, bt: Batch, r: torch.Tensor | None, k: int
) -> tuple[list[torch.Tensor | None], float, torch.Tensor]:
    """Gradients of a masked batch, every product over the observed entries only; also returns h0."""
    import torch

    assert bt.s0 is not None and bt.col is not None and bt.row is not None
    s0, col, row = bt.s0, bt.col, bt.row
    h0 = net._hidden_pre(bt, s0, r).sigmoid_()
    # the visible biases (and context) of each observed entry: the sampled product adds W'h to them
    base = net._b[col] if r is None else torch.addcmul(net._b[col], r[row], net._e[col])
    h = torch.bernoulli(h0, generator=net._gen)
    hk, sk = h0, s0
    for step in range(k):
        z = torch.sparse.sampled_addmm(bt.csr(base), h, net._W).values()
        sk = z.tanh_() if bt.m is None else z.tanh_().mul_(bt.m)
        hk = net._hidden_pre(bt, sk, r).sigmoid_()
        if step < k - 1:
            h = torch.bernoulli(hk, generator=net._gen)
    ds = s0 - sk
    if net.centered:
        off = net._o[col] if bt.m is None else net._o[col] * bt.m
        gW = transposed_products(bt, [(s0 - off, h0 - net._lam), (off - sk, hk - net._lam)])
    else:
        gW = transposed_products(bt, [(s0, h0), (sk.neg(), hk)])
    gb = torch.zeros_like(net._b).index_add_(0, col, ds)
    ge = None if r is None else torch.zeros_like(net._e).index_add_(0, col, ds * r[row])
    dh = h0 - hk
    gc = dh.sum(0)
    gd = None if r is None else r @ dh
    err = float(ds.abs_().sum()) / 2.0
    return [gW, gb, ge, gc, gd], err, h0


def implicit_step(
    net: RBM, bt: Batch, r: torch.Tensor | None, k: int
) -> tuple[list[torch.Tensor | None], float, torch.Tensor]:
    """Gradients of a sparse batch in implicit mode (every unseen entry a negative of weight w).

    The reconstruction T = tanh(W'h + b + r e) is the one dense array: the weighted negative spins
    are w T on unseen entries and m T on observed ones, so every product with them is w times a dense
    product with T plus a sparse correction over the observed entries (m T - w T there). Nothing dense
    is rescaled, scattered or centred, and the weight gradient is one dense product plus one
    transposed sparse product.

    Longer than 60 lines on purpose: one CD-k step's arithmetic, kept in one place and in its order
    (results stay bit-identical); its parts share a dozen tensors."""
    import torch

    assert bt.s0 is not None and bt.col is not None and bt.row is not None
    w, col, row, n = bt.fill, bt.col, bt.row, bt.n
    centered = net.centered
    h0 = net._hidden_pre(bt, bt.s0, r).sigmoid_()
    h = torch.bernoulli(h0, generator=net._gen)
    parts = net._catalogue_parts(bt)
    for step in range(k):
        T = net._half_logits(h, r)
        if parts:
            net._add_catalogue(T, bt, parts)
        T.tanh_()
        t_obs = T[row, col]
        obs_sk = t_obs if bt.m is None else t_obs * bt.m
        corr = obs_sk - w * t_obs  # observed entries: m T, counted above as w T
        pre = torch.mm(T, net._WT).mul_(w).add_(bt.csr(corr) @ net._WT).add_(net._c)
        if r is not None:
            pre.addr_(r, net._d)
        hk = pre.sigmoid_()
        if step < k - 1:
            h = torch.bernoulli(hk, generator=net._gen)
    t_colsum = T.sum(0)
    t_sum = float(t_colsum.sum())
    unseen = w * (t_sum + n * bt.n_features) - w * (float(t_obs.sum()) + len(t_obs))
    err = (unseen + float((bt.s0 - obs_sk).abs().sum())) / 2.0
    delta = bt.s0 + w  # the observed entries' spins above the unseen level -w
    gb = torch.zeros_like(net._b).index_add_(0, col, delta - corr).sub_(w * n).sub_(t_colsum, alpha=w)
    ge = None
    if r is not None:
        ge = torch.zeros_like(net._e).index_add_(0, col, (delta - corr) * r[row])
        ge.sub_(w * float(r.sum())).sub_(r @ T, alpha=w)
    if centered:
        o, lam = net._o, net._lam
        h0c, hkc = h0 - lam, hk - lam
        off = o[col] if bt.m is None else o[col] * bt.m
        # positive: unseen -w (1 + o), observed m (s - o); negative: unseen w (T - o), observed m T - off
        gW = transposed_products(bt, [(delta - off + w * o[col], h0c), (-(corr - off + w * o[col]), hkc)])
        gW.addr_(o + 1.0, h0c.sum(0), alpha=-w)
        gW.addr_(o, hkc.sum(0), alpha=w)
    else:
        hkc = hk
        gW = transposed_products(bt, [(delta, h0), (-corr, hk)])
        gW.sub_(h0.sum(0), alpha=w)
    gW.addmm_(T.t(), hkc, alpha=-w)
    dh = h0 - hk
    gc = dh.sum(0)
    gd = None if r is None else r @ dh
    grads: list[torch.Tensor | None] = [gW, gb, ge, gc, gd]
    if parts:
        # positive minus negative weighted spins summed over each level's catalogue items: -w (1 + T)
        # at every item of a group the row has an entry in, as if unseen; then the row's entries taken
        # out and added back as s0 - m T where they count (not alone)
        back = w * (1.0 + t_obs)
        diff = bt.s0 - obs_sk
        grads.append(
            torch.stack(
                [
                    (T[rows, cols].sum() + len(rows)) * -w + (back + (1.0 - alone) * diff).sum()
                    for rows, cols, alone in parts
                ]
            )
        )
    return grads, err, h0


def dense_negative_step(
    net: RBM, bt: Batch, r: torch.Tensor | None, k: int
) -> tuple[list[torch.Tensor | None], float, torch.Tensor]:
    """Gradients when every entry is modelled (implicit mode or a fully observed dense batch): the
    up-pass of the data stays sparse, the reconstruction and the negative phase are dense. With
    centring, the spins enter the weight gradient as m (s - o) and the hidden units as h - lambda.

    Longer than 60 lines on purpose: one CD-k step's arithmetic, kept in one place and in its order
    (results stay bit-identical); its parts share a dozen tensors."""
    import torch

    h0 = net._hidden(bt)
    h = torch.bernoulli(h0, generator=net._gen)
    hk = h0
    sk = h0  # set below
    obs_sk: torch.Tensor | None = None
    for step in range(k):
        sk = net._half_logits(h, r).tanh_()
        if bt.dense is None:
            assert bt.row is not None and bt.col is not None
            obs = sk[bt.row, bt.col]  # observed entries keep their own weight, unseen ones weigh w
            obs_sk = obs if bt.m is None else obs * bt.m
            sk.mul_(bt.fill)
            sk[bt.row, bt.col] = obs_sk
        hk = net._up(sk, r)
        if step < k - 1:
            h = torch.bernoulli(hk, generator=net._gen)
    n, centered = bt.n, net.centered
    o, lam = net._o, net._lam
    h0c = h0 - lam if centered else h0
    hkc = hk - lam if centered else hk
    if bt.dense is not None:
        s0 = bt.dense
        gb = s0.sum(0) - sk.sum(0)
        ge = None if r is None else r @ (s0 - sk)
        err = float((s0 - sk).abs_().sum()) / 2.0
        gW = torch.mm((s0 - o).t() if centered else s0.t(), h0c)
        if centered:
            sk = sk - o
    else:
        assert bt.s0 is not None and bt.col is not None and bt.row is not None and obs_sk is not None
        w, col, row = bt.fill, bt.col, bt.row
        m = bt.m
        # |s0 - sk| = w (1 + tanh z) on unseen entries, the observed ones corrected
        unseen = float(sk.sum()) + w * sk.numel() - float(obs_sk.sum()) - w * len(obs_sk)
        err = (unseen + float((bt.s0 - obs_sk).abs().sum())) / 2.0
        delta = bt.s0 + w  # the observed entries' spins above the unseen level -w
        gb = torch.zeros_like(net._b).index_add_(0, col, delta).sub_(w * n).sub_(sk.sum(0))
        ge = None
        if r is not None:
            ge = torch.zeros_like(net._e).index_add_(0, col, delta * r[row])
            ge.sub_(w * float(r.sum())).sub_(r @ sk)
        if centered:  # unseen: -w (1 + o); observed: m (s - o)
            off = o[col] if m is None else o[col] * m
            gW = transposed_products(bt, [(delta - off + w * o[col], h0c)])
            gW.addr_(o + 1.0, h0c.sum(0), alpha=-w)
            sk.sub_(o, alpha=w)
            sk[row, col] = obs_sk - off
        else:
            gW = transposed_products(bt, [(delta, h0c)])
            gW.sub_(h0c.sum(0), alpha=w)
    gW.addmm_(sk.t(), hkc, alpha=-1.0)
    dh = h0 - hk
    gc = dh.sum(0)
    gd = None if r is None else r @ dh
    return [gW, gb, ge, gc, gd], err, h0


def transposed_products(bt: Batch, terms: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """sum over terms of S(values)' h, (n_features, n_components): each observed entry (u, i) adds
    values[u, i] * h[u] to row i. On the CPU, one scipy product over the entries in column order (torch's
    transposed sparse products are several times slower there); elsewhere torch CSR tensors."""
    import torch

    assert bt.perm is not None and bt.colT is not None and bt.rowT is not None
    n, n_terms = bt.n, len(terms)
    nnz = len(bt.perm)
    ptr = bt.colT * n_terms
    idx = np.empty(nnz * n_terms, np.int64)
    for t in range(n_terms):
        idx[t::n_terms] = bt.rowT + t * n
    h = torch.cat([hh for _, hh in terms])
    if h.device.type == "cpu":
        data = np.empty(nnz * n_terms, np.float32)
        for t, (vals, _) in enumerate(terms):
            data[t::n_terms] = vals.numpy()[bt.perm]
        T = sp.csr_matrix((data, idx, ptr), shape=(bt.n_features, n * n_terms))
        out: torch.Tensor = torch.from_numpy(np.asarray(T @ h.numpy()))
        return out
    perm = torch.from_numpy(bt.perm).to(h.device)
    data_t = torch.stack([vals[perm] for vals, _ in terms], 1).reshape(-1)
    Tt = torch.sparse_csr_tensor(
        torch.from_numpy(ptr).to(h.device),
        torch.from_numpy(idx).to(h.device),
        data_t,
        (bt.n_features, n * n_terms),
        check_invariants=False,
    )
    return Tt @ h
