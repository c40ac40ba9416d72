"""Hard-triplet mining from a pool (Almazán et al., 2018, Sec. 3.2): the per-query top-``T`` table
against brute-force enumeration of every (q, p, n), the sampler on a tiny model, its determinism
and exact replay, a real Trainer run resumed mid-epoch, and every bad input."""
from __future__ import annotations

import functools
import itertools
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reidlib.engine.mining import HardTriplets, PoolMiningSampler, embed_indices, hardest_triplets
from reidlib.engine.trainer import LambdaHook, Trainer


# ---------------------------------------------------------------------------------------------
# brute force: every (q, p, n), ordered by the documented rule
def brute_force(x: np.ndarray, pids: np.ndarray, top: int, margin: float) -> dict[int, list[tuple[int, int, float]]]:
    """``{query: [(positive, negative, loss), ...]}`` for every valid query, its first ``top`` triplets
    ordered by ``(-(s_n - s_p), s_p, p, -s_n, n)``: the loss (unclamped), then the harder positive
    (lower similarity, then lower position), then the harder negative (higher similarity, lower position)."""
    s = x @ x.T
    out = {}
    for q in range(len(x)):
        pos = [p for p in range(len(x)) if p != q and pids[p] == pids[q]]
        neg = [n for n in range(len(x)) if pids[n] != pids[q]]
        if pos and neg:
            keys = sorted((-(s[q, n] - s[q, p]), s[q, p], p, -s[q, n], n) for p in pos for n in neg)[:top]
            out[q] = [(k[2], k[4], max(0.0, margin + (s[q, k[4]] - s[q, k[2]]))) for k in keys]
    return out


def table_rows(h: HardTriplets) -> dict[int, list[tuple[int, int, float]]]:
    rows = {}
    for i, q in enumerate(h.queries.tolist()):
        c = int(h.counts[i])
        rows[q] = list(zip(h.positives[i, :c].tolist(), h.negatives[i, :c].tolist(), h.losses[i, :c].tolist()))
        assert (h.positives[i, c:] == -1).all() and (h.negatives[i, c:] == -1).all()
        assert torch.isnan(h.losses[i, c:]).all()
    return rows


def integer_pool(rng: np.random.Generator, n: int, d: int = 3, ids: int = 5) -> tuple[torch.Tensor, np.ndarray]:
    """Small-integer coordinates: dot products are exact in float64 and equal ones are common (ties)."""
    return torch.tensor(rng.integers(-2, 3, size=(n, d)), dtype=torch.float64), rng.integers(0, ids, size=n)


@pytest.mark.parametrize("top", [1, 3, 7, 25])
def test_table_equals_brute_force_with_ties(top):
    rng = np.random.default_rng(top)
    for _ in range(15):
        x, pids = integer_pool(rng, int(rng.integers(2, 28)))
        h = hardest_triplets(x, pids, top=top, margin=0.5, normalize=False, chunk_size=int(rng.integers(1, 6)))
        assert h.positives.shape == h.negatives.shape == h.losses.shape == (len(h), top)
        assert table_rows(h) == brute_force(x.numpy(), pids, top, 0.5)


@pytest.mark.parametrize("top", [2, 10, 25])
def test_table_equals_brute_force_on_unit_vectors(top):
    rng = np.random.default_rng(100 + top)
    for _ in range(5):
        n = int(rng.integers(10, 40))
        x = torch.tensor(rng.normal(size=(n, 6)), dtype=torch.float64)
        pids = rng.integers(0, 6, size=n)
        h = hardest_triplets(x, pids, top=top, margin=0.1)  # normalises
        want = brute_force(F.normalize(x, dim=1).numpy(), pids, top, 0.1)
        got = table_rows(h)
        assert got.keys() == want.keys()
        for q in want:
            assert [t[:2] for t in got[q]] == [t[:2] for t in want[q]]
            np.testing.assert_allclose([t[2] for t in got[q]], [t[2] for t in want[q]], atol=1e-12)


def test_queries_with_fewer_than_top_triplets_use_all_they_have():
    # id 0: two images (1 positive each); ids 1, 2: one image each (no positive: not queries)
    x = torch.eye(4, dtype=torch.float64)
    h = hardest_triplets(x, [0, 0, 1, 2], top=5, normalize=False)
    assert h.queries.tolist() == [0, 1]
    assert h.counts.tolist() == [2, 2]  # 1 positive x 2 negatives
    assert h.positives[:, :2].tolist() == [[1, 1], [0, 0]] and (h.positives[:, 2:] == -1).all()
    assert h.negatives[:, :2].tolist() == [[2, 3], [2, 3]]  # equal losses: lower position first
    assert torch.allclose(h.losses[:, :2], torch.full((2, 2), 0.1, dtype=torch.float64))
    assert torch.isnan(h.losses[:, 2:]).all() and not h.active[:, 2:].any()


def test_tie_rule_harder_positive_then_harder_negative_then_position():
    # query 0 = e0. Positives (id 0): 1 and 2 equal (s = 0), 3 with s = 0.5. Negatives (id 1): 4 and 5
    # equal (s = 0), 6 with s = 0.5. v = s_n - s_p; both (3, 6) and (1, 4) have v = 0.
    e = torch.eye(3, dtype=torch.float64)
    x = torch.stack([e[0], e[1], e[1], 0.5 * e[0] + e[1], e[2], e[2], 0.5 * e[0] + e[2]])
    pids = [0, 0, 0, 0, 1, 1, 1]
    h = hardest_triplets(x, pids, top=9, margin=0.1, normalize=False)
    row = list(zip(h.positives[0].tolist(), h.negatives[0].tolist()))
    # v = 0.5: the hardest positives (1 then 2: same s, lower position first) with the hardest negative 6;
    # v = 0: (1, 4), (1, 5), (2, 4), (2, 5) -- harder positive first -- and (3, 6) last (its s_p = 0.5)
    assert row == [(1, 6), (2, 6), (1, 4), (1, 5), (2, 4), (2, 5), (3, 6), (3, 4), (3, 5)]
    assert h.losses[0].tolist() == pytest.approx([0.6, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.0, 0.0])
    assert h.active[0].tolist() == [True] * 7 + [False] * 2
    # and the top-T cut among ties keeps the documented ones
    h3 = hardest_triplets(x, pids, top=3, normalize=False)
    assert list(zip(h3.positives[0].tolist(), h3.negatives[0].tolist())) == row[:3]


def test_zero_loss_triplets_are_ranked_by_how_close_they_come():
    # every triplet inactive (margin 0): the order is still that of s_n - s_p
    rng = np.random.default_rng(7)
    x, pids = integer_pool(rng, 20)
    h = hardest_triplets(x, pids, top=4, margin=0.0, normalize=False)
    assert table_rows(h) == brute_force(x.numpy(), pids, 4, 0.0)
    assert (h.losses[h.counts[:, None] > torch.arange(4)] >= 0).all()


def test_chunking_does_not_change_the_table():
    rng = np.random.default_rng(3)
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(3))
    pids = rng.integers(0, 40, size=300)
    a, b = hardest_triplets(x, pids, chunk_size=1), hardest_triplets(x, pids)
    for name in ("queries", "positives", "negatives", "counts"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.allclose(a.losses.nan_to_num(-1), b.losses.nan_to_num(-1), atol=1e-6)


def test_half_precision_descriptors_are_ranked_in_float32():
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(0)).half()
    pids = np.repeat(np.arange(10), 4)
    a, b = hardest_triplets(x, pids, top=5), hardest_triplets(x.float(), pids, top=5)
    assert a.losses.dtype == torch.float32
    assert torch.equal(a.positives, b.positives) and torch.equal(a.negatives, b.negatives)


def test_squared_euclidean_orders_like_the_dot_product_plain_euclidean_does_not():
    """On unit vectors ||q-p||^2 - ||q-n||^2 = 2 (q.n - q.p): the same ranking as Eq. (1). The plain
    distances' difference ||q-p|| - ||q-n|| is not a monotone function of it: a counter-example."""
    rng = np.random.default_rng(0)
    x = F.normalize(torch.tensor(rng.normal(size=(16, 4))), dim=1).numpy()
    pids = np.repeat(np.arange(4), 4)
    q = 0
    triplets = [(p, n) for p in range(1, 4) for n in range(4, 16)]
    dot = {t: x[q] @ x[t[1]] - x[q] @ x[t[0]] for t in triplets}
    sq = {t: np.sum((x[q] - x[t[0]]) ** 2) - np.sum((x[q] - x[t[1]]) ** 2) for t in triplets}
    eu = {t: np.linalg.norm(x[q] - x[t[0]]) - np.linalg.norm(x[q] - x[t[1]]) for t in triplets}
    for a, b in itertools.combinations(triplets, 2):
        if abs(dot[a] - dot[b]) > 1e-9:
            assert np.sign(sq[a] - sq[b]) == np.sign(dot[a] - dot[b])
    flips = [(a, b) for a, b in itertools.combinations(triplets, 2)
             if abs(dot[a] - dot[b]) > 1e-9 and np.sign(eu[a] - eu[b]) != np.sign(dot[a] - dot[b])]
    assert flips, "expected a pair of triplets that plain Euclidean differences rank the other way"
    (p1, n1), (p2, n2) = flips[0]
    # the table's order is the squared-Euclidean one
    h = hardest_triplets(torch.tensor(x), pids, top=len(triplets), margin=0.1)
    row = list(zip(h.positives[0].tolist(), h.negatives[0].tolist()))
    assert row == sorted(triplets, key=lambda t: -sq[t])
    assert row != sorted(triplets, key=lambda t: -eu[t])
    # and the hardest-T selection differs too for some T
    assert any(set(row[:t]) != set(sorted(triplets, key=lambda t_: -eu[t_])[:t]) for t in range(1, len(triplets)))


def test_hardest_triplets_bad_input():
    x, pids = torch.randn(6, 3), [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        hardest_triplets(torch.randn(6), pids)
    with pytest.raises(ValueError, match="6 rows but pids has 5"):
        hardest_triplets(x, pids[:5])
    with pytest.raises(ValueError, match="floating point"):
        hardest_triplets(torch.ones(6, 3, dtype=torch.long), pids)
    with pytest.raises(ValueError, match="NaN"):
        hardest_triplets(torch.full((6, 3), float("nan")), pids)
    with pytest.raises(ValueError, match="top must be"):
        hardest_triplets(x, pids, top=0)
    with pytest.raises(ValueError, match="margin must be"):
        hardest_triplets(x, pids, margin=-0.1)
    with pytest.raises(ValueError, match="chunk_size must be"):
        hardest_triplets(x, pids, chunk_size=0)
    # no identity with two images: an empty table, not an error (the sampler raises)
    assert len(hardest_triplets(x, range(6))) == 0


# ---------------------------------------------------------------------------------------------
# a tiny model and dataset
class Normed(nn.Module):
    """Linear over the flattened image, then l2-normalised."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 4, d)

    def forward(self, x):
        return F.normalize(self.fc(x.flatten(1)), dim=1)


def tiny_data(n_ids: int = 10, per_id: int = 5, seed: int = 0) -> list[tuple]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n_ids, 3, 8, 4, generator=g)
    return [(base[i // per_id] + 0.8 * torch.randn(3, 8, 4, generator=g), i // per_id, 0, i)
            for i in range(n_ids * per_id)]


class Counting:
    """An embed function that counts its calls."""

    def __init__(self, fn) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, indices):
        self.calls += 1
        return self.fn(indices)


def tiny_sampler(top: int = 5, seed: int = 0, **kw) -> tuple[PoolMiningSampler, Counting, nn.Module, list]:
    torch.manual_seed(0)
    model, data = Normed(), tiny_data()
    embed = Counting(functools.partial(embed_indices, model, data))
    args = dict(triplets_per_batch=8, batches_per_pool=20, pool_size=30, top=top, seed=seed) | kw
    return PoolMiningSampler([d[1] for d in data], embed=embed, **args), embed, model, data


@pytest.mark.parametrize("top", [5, 25])
def test_sampled_triplets_are_among_the_hardest_of_a_brute_force_enumeration(top):
    sampler, embed, model, data = tiny_sampler(top=top)
    sampler.set_epoch(0)
    pool = sampler.pool.tolist()
    pids = np.array([data[i][1] for i in pool])
    with torch.no_grad():
        emb = model(torch.stack([data[i][0] for i in pool])).double().numpy()
    s = emb @ emb.T
    where = {i: j for j, i in enumerate(pool)}
    batches = list(sampler)
    assert len(batches) == len(sampler) == 20 and embed.calls == 1
    for batch in batches:
        assert len(batch) == 3 * 8
        for q, p, n in zip(batch[0::3], batch[1::3], batch[2::3]):
            q, p, n = where[q], where[p], where[n]  # all in the pool
            assert q != p and pids[q] == pids[p] != pids[n]
            vs = sorted((s[q, nn_] - s[q, pp] for pp in range(len(pool)) if pp != q and pids[pp] == pids[q]
                         for nn_ in range(len(pool)) if pids[nn_] != pids[q]), reverse=True)
            assert s[q, n] - s[q, p] >= vs[min(top, len(vs)) - 1] - 1e-5
    # queries only among anchors with a positive in the pool
    ids, counts = np.unique(pids, return_counts=True)
    single = set(ids[counts == 1])
    assert not {int(data[q][1]) for b in batches for q in b[0::3]} & single
    st = sampler.stats()
    assert st["pools_embedded"] == sampler.pools_embedded == 1 and sampler.images_embedded == 30
    assert 0 <= sampler.active_fraction <= 1 and sampler.last_embed_seconds > 0
    assert st["valid_queries"] == int(counts[counts >= 2].sum())


def test_queries_are_drawn_uniformly_among_the_valid_ones():
    sampler, *_ = tiny_sampler(batches_per_pool=400)
    sampler.set_epoch(0)
    trip = sampler.batch_triplets()
    q = trip[..., 0].ravel()
    valid = set(sampler.pool[sampler.table.queries.numpy()].tolist())
    assert set(q.tolist()) == valid
    freq = np.array([np.sum(q == v) for v in valid])
    expected = q.size / len(valid)
    assert np.all(np.abs(freq - expected) < 6 * np.sqrt(expected))


def test_same_seed_same_batches_and_iterating_twice_repeats():
    a, *_ = tiny_sampler(seed=3)
    b, *_ = tiny_sampler(seed=3)
    c, *_ = tiny_sampler(seed=4)
    for s in (a, b, c):
        s.set_epoch(2)
    assert list(a) == list(a) == list(b)
    assert list(a) != list(c)
    a.set_epoch(3)
    assert list(a) != list(b)


def test_state_dict_replays_the_batches_without_embedding():
    a, embed_a, *_ = tiny_sampler(seed=1)
    a.set_epoch(1)
    want, active = list(a), a.active_fraction
    state = a.state_dict()
    # a checkpoint holds it: plain data and tensors, readable with weights_only=True
    import io
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["positives"].dtype == torch.int32
    a.set_epoch(2)  # the sampler moves on; the saved state must not follow it
    assert state["pool_epoch"] == 1

    b, embed_b, *_ = tiny_sampler(seed=1)
    b.load_state_dict(state)
    b.set_epoch(1)
    assert embed_b.calls == 0
    assert list(b) == want
    assert b.pools_embedded == 1 and b.active_fraction == active
    b.set_epoch(2)
    assert embed_b.calls == 1 and b.pools_embedded == 2 and list(b) == list(a)
    assert embed_a.calls == 2


def test_set_epoch_of_the_stored_pool_does_not_embed_again():
    s, embed, *_ = tiny_sampler()
    s.set_epoch(0)
    s.set_epoch(0)
    list(s)
    assert embed.calls == 1
    s.set_epoch(1)
    assert embed.calls == 2 and s.pool_epoch == 1


def test_iterating_without_set_epoch_mines_epoch_zero():
    s, embed, *_ = tiny_sampler()
    assert len(list(s)) == 20 and embed.calls == 1 and s.pool_epoch == 0


# ---------------------------------------------------------------------------------------------
# embed_indices
def test_embed_indices_is_eval_mode_no_grad_and_leaves_the_global_rngs_alone():
    from test_engine_toys import ToyNet, ToyReIDData

    torch.manual_seed(0)
    model = ToyNet(norm="bn", dropout=0.5)
    model.train()
    augmenting, plain = ToyReIDData(augment=True), ToyReIDData(augment=False)
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    bn = model.body[1].running_mean.clone()
    f = embed_indices(model, augmenting, [3, 1, 4, 1, 5], batch_size=2)
    after = (random.getstate(), np.random.get_state()[1], torch.get_rng_state())
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and torch.equal(before[2], after[2])
    assert model.training and torch.equal(model.body[1].running_mean, bn)  # mode restored, BN untouched
    assert f.shape == (5, 8) and not f.requires_grad
    # deterministic even on an augmenting dataset, and on a plain one equal to the eval forward
    assert torch.equal(f, embed_indices(model, augmenting, [3, 1, 4, 1, 5], batch_size=2))
    assert torch.allclose(f, embed_indices(model, augmenting, [3, 1, 4, 1, 5], batch_size=3), atol=1e-6)
    model.eval()
    with torch.no_grad():
        ref = model(torch.stack([plain[i][0] for i in [3, 1, 4]]))
    assert torch.allclose(embed_indices(model, plain, [3, 1, 4]), ref, atol=1e-6)
    assert not model.training


def test_embed_indices_passes_images_of_several_sizes_as_a_list():
    class PerImage(nn.Module):
        def forward(self, x):
            xs = x if isinstance(x, list) else list(x)
            return torch.stack([im.mean(dim=(1, 2)) for im in xs])

    data = [(torch.full((3, 4 + i % 2, 2), float(i)), 0, 0, i) for i in range(5)]
    f = embed_indices(PerImage(), data, range(5), batch_size=3)
    assert torch.equal(f[:, 0], torch.arange(5.0))


def test_embed_indices_bad_input():
    model, data = Normed(), tiny_data()
    with pytest.raises(ValueError, match="indices is empty"):
        embed_indices(model, data, [])
    with pytest.raises(ValueError, match="batch_size"):
        embed_indices(model, data, [0], batch_size=0)

    class Dict(nn.Module):
        def forward(self, x):
            return {"feat": x.flatten(1)}

    with pytest.raises(ValueError, match=r"must return \(B, D\)"):
        embed_indices(Dict(), data, [0, 1])


# ---------------------------------------------------------------------------------------------
# a real Trainer: one epoch per pool, resumed mid-epoch to the same weights
def consecutive_triplet_hinge(outputs, batch, margin: float = 0.1):
    """Mean hinge of Eq. (1) over the batch read as consecutive (query, positive, negative) triples."""
    pids = batch.pids
    assert torch.equal(pids[0::3], pids[1::3]) and not (pids[0::3] == pids[2::3]).any()
    q, p, n = F.normalize(outputs["feat"], dim=1).reshape(-1, 3, outputs["feat"].shape[1]).unbind(1)
    return {"triplet": (margin + (q * n).sum(1) - (q * p).sum(1)).clamp(min=0).mean()}


def make_mining_trainer(checkpoint_dir=None, hooks=(), epochs: int = 2) -> tuple[Trainer, Counting]:
    from test_engine_toys import ToyNet, ToyReIDData

    torch.manual_seed(0)
    data, view = ToyReIDData(n_ids=8, per_id=6, augment=True), ToyReIDData(n_ids=8, per_id=6, augment=False)
    model = ToyNet(norm="bn", dropout=0.3)
    embed = Counting(functools.partial(embed_indices, model, view))
    sampler = PoolMiningSampler(data.pids, triplets_per_batch=4, batches_per_pool=3, pool_size=24, top=5, seed=0,
                                embed=embed)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    trainer = Trainer(model, consecutive_triplet_hinge, opt, data, sampler, epochs=epochs, checkpoint_dir=checkpoint_dir,
                      checkpoint_every_steps=1, progress=False, seed=0, hooks=hooks)
    return trainer, embed


def test_trainer_runs_one_pool_per_epoch_and_resumes_to_the_same_weights(tmp_path):
    ref, embed = make_mining_trainer()
    history = ref.fit()
    assert embed.calls == ref.batch_sampler.pools_embedded == 2 and len(history) == 2
    assert all(e["steps"] == 3 for e in history)
    start = {k: v.clone() for k, v in make_mining_trainer()[0].module.state_dict().items()}
    assert any(not torch.equal(start[k], v) for k, v in ref.module.state_dict().items())

    class Stop(Exception):
        pass

    # the hook fires before the step's checkpoint: stop=2 resumes from epoch 0 step 1 (pool 0 replayed),
    # stop=4 from the end of epoch 0 (pool 1 embedded with the restored weights), stop=5 from epoch 1 step 1
    for stop, embeds in ((2, 1), (4, 1), (5, 0)):
        def halt(t, losses, stop=stop):
            if t.global_step == stop:
                raise Stop

        ck = tmp_path / f"s{stop}"
        first, _ = make_mining_trainer(ck, hooks=[LambdaHook(on_step_end=halt)])
        with pytest.raises(Stop):
            first.fit()
        second, embed2 = make_mining_trainer(ck)
        second.fit(resume=True)
        assert embed2.calls == embeds, f"stop={stop}"
        for (k, a), b in zip(ref.module.state_dict().items(), second.module.state_dict().values()):
            assert torch.equal(a, b), f"stop={stop}: {k} differs"
        strip = lambda h: [{k: v for k, v in e.items() if k != "time_s"} for e in h]  # noqa: E731
        assert strip(second.history) == strip(ref.history)


# ---------------------------------------------------------------------------------------------
# bad input
PIDS = [i // 4 for i in range(40)]  # 10 identities x 4 images


@pytest.mark.parametrize("kwargs, match", [
    (dict(pool_size=5, triplets_per_batch=2), r"pool_size=5 is smaller than one batch's 6 images"),
    (dict(pool_size=41), r"pool_size=41 is larger than the training set \(40 images\)"),
    (dict(pool_size=0), "pool_size must be an int >= 1"),
    (dict(top=0), "top must be an int >= 1"),
    (dict(triplets_per_batch=0), "triplets_per_batch must be an int >= 1"),
    (dict(batches_per_pool=0), "batches_per_pool must be an int >= 1"),
    (dict(margin=-0.1), "margin must be a finite number >= 0"),
    (dict(margin=float("nan")), "margin must be a finite number >= 0"),
    (dict(seed=-1), "seed must be an int >= 0"),
    (dict(pool_size=2.5), "pool_size must be an int"),
])
def test_sampler_bad_arguments(kwargs, match):
    args = dict(triplets_per_batch=2, batches_per_pool=4, pool_size=20) | kwargs
    with pytest.raises(ValueError, match=match):
        PoolMiningSampler(PIDS, **args)


def test_training_set_without_any_triplet():
    with pytest.raises(ValueError, match="pids: no triplet exists"):
        PoolMiningSampler(list(range(10)), 1, 1, 3)
    with pytest.raises(ValueError, match="pids: no triplet exists"):
        PoolMiningSampler([0] * 10, 1, 1, 3)


def test_pool_without_a_valid_query_names_the_problem():
    # one pair among 10 singletons: a pool of 3 mostly misses it -- no anchor has a positive
    pids = [0, 0] + list(range(1, 11))
    s = PoolMiningSampler(pids, 1, 2, 3, embed=lambda ix: torch.randn(len(ix), 4))
    epoch = next(e for e in range(100) if not {0, 1} <= set(s.pool_indices(e).tolist()))
    with pytest.raises(ValueError, match=r"no valid query.*no anchor has a positive.*larger pool_size"):
        s.set_epoch(epoch)
    # an epoch whose pool holds the pair: its two images are the only queries
    good = next(e for e in range(1000) if {0, 1} <= set(s.pool_indices(e).tolist()))
    s.set_epoch(good)
    assert sorted(s.pool[s.table.queries.numpy()].tolist()) == [0, 1]
    assert {b[0] for b in s} <= {0, 1}


def test_embed_missing_or_wrong():
    s = PoolMiningSampler(PIDS, 2, 4, 20)
    with pytest.raises(ValueError, match="embed is not set"):
        s.set_epoch(0)
    with pytest.raises(ValueError, match="embed is not set"):
        list(s)
    s.embed = lambda ix: torch.randn(len(ix) - 1, 4)
    with pytest.raises(ValueError, match=r"embed returned \(19, 4\) for 20 indices"):
        s.set_epoch(0)
    s.embed = lambda ix: torch.randn(len(ix))
    with pytest.raises(ValueError, match=r"embed returned \(20,\) for 20 indices"):
        s.set_epoch(0)
    s.embed = lambda ix: [[0.0]] * len(ix)
    with pytest.raises(ValueError, match="embed returned list"):
        s.set_epoch(0)
    s.embed = lambda ix: torch.randn(len(ix), 4)
    s.set_epoch(0)
    assert s.pools_embedded == 1


def test_load_state_dict_refuses_another_configuration():
    s = PoolMiningSampler(PIDS, 2, 4, 20, embed=lambda ix: torch.randn(len(ix), 4))
    s.set_epoch(0)
    state = s.state_dict()
    with pytest.raises(ValueError, match="pool_size=20, this sampler has pool_size=24"):
        PoolMiningSampler(PIDS, 2, 4, 24).load_state_dict(state)
    with pytest.raises(ValueError, match="pids_digest"):
        PoolMiningSampler(PIDS[::-1], 2, 4, 20).load_state_dict(state)
    with pytest.raises(ValueError, match="not a PoolMiningSampler state"):
        s.load_state_dict({"epoch": 0})
    # a state taken before any pool restores to "nothing mined"
    fresh = PoolMiningSampler(PIDS, 2, 4, 20)
    s.load_state_dict(fresh.state_dict())
    assert s.pool_epoch is None and s.table is None


# ---------------------------------------------------------------------------------------------
# random triplets (the baseline of the pool mining)
def test_random_triplets_are_valid_and_replayable():
    from reidlib.engine.mining import RandomTripletSampler

    pids = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])  # id 2 has one image: never a query nor a positive
    s = RandomTripletSampler(pids, triplets_per_batch=5, batches_per_epoch=40, seed=3)
    s.set_epoch(2)
    batches = list(s)
    assert len(batches) == 40 and all(len(b) == 15 for b in batches)
    t = np.array(batches).reshape(-1, 3)
    assert np.all(pids[t[:, 0]] == pids[t[:, 1]]) and np.all(t[:, 0] != t[:, 1])
    assert np.all(pids[t[:, 0]] != pids[t[:, 2]]) and not np.any(pids[t[:, 0]] == 2)
    assert 5 in set(t[:, 2])  # the lonely image can be a negative
    again = RandomTripletSampler(pids, 5, 40, seed=3)
    again.load_state_dict(s.state_dict())
    assert list(again) == batches
    s.set_epoch(3)
    assert list(s) != batches


@pytest.mark.parametrize("kw, match", [({"triplets_per_batch": 0}, "triplets_per_batch"),
                                       ({"batches_per_epoch": 0}, "batches_per_epoch")])
def test_random_triplets_bad_input(kw, match):
    from reidlib.engine.mining import RandomTripletSampler

    args = {"pids": [0, 0, 1], "triplets_per_batch": 2, "batches_per_epoch": 2, **kw}
    with pytest.raises(ValueError, match=match):
        RandomTripletSampler(**args)
    with pytest.raises(ValueError, match="no triplet"):
        RandomTripletSampler([0, 1, 2], 1, 1)
