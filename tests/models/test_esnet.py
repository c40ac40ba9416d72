"""ES-Net: structure (shared trunk, own layer3/layer4), BESM in the training step, Eq. (1), the registry,
the recipe's variants and presets."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidlib.losses import CrossEntropyLabelSmooth, TripletLoss, build_criterion
from reidlib.models import build_model
from reidlib.models.esnet import ESNet, ESNetConfig, batch_drop_mask
from reidlib.models.p_pooling import PPooling
from reidlib.papers.esnet import PRESETS, VARIANTS, build, criterion_options
from reidlib.saliency import erase_top

N_CLASSES = 6
H, W = 64, 32


pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(seed: int = 0, p: int = 3, k: int = 2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(p * k, 3, H, W, generator=g), torch.arange(p).repeat_interleave(k)


def _model(variant: str = "esnet", **kw) -> ESNet:
    torch.manual_seed(0)
    return build(variant, N_CLASSES, backbone="resnet18", **kw)


def _criterion(model: ESNet):
    return build_criterion("reid", N_CLASSES, **criterion_options(model.config))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_and_describes(variant):
    torch.manual_seed(1)
    model = build(variant, N_CLASSES, backbone="resnet18")
    criterion = _criterion(model)
    x, y = _batch()
    out = model(x, targets=y)
    terms = criterion(out, y)
    assert set(terms) == {f"{b}/{t}" for b in model.config.branches
                          for t in (("id", "triplet") if model.config.triplet else ("id",))}
    criterion.total(out, y).backward()
    trained = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not trained, f"parameters without gradient: {trained[:5]}"
    model.eval()
    with torch.no_grad():
        d = model(x)
    assert d.shape == (6, model.out_dim) and torch.isfinite(d).all()


def test_two_branches_share_the_trunk_and_own_layer3_layer4():
    model = _model()
    aib, esb = model.aib, model.esb
    for name in ("layer3", "layer4"):
        pa, pe = dict(getattr(aib, name).named_parameters()), dict(getattr(esb, name).named_parameters())
        assert pa.keys() == pe.keys()
        assert all(pa[k] is not pe[k] and torch.equal(pa[k], pe[k]) for k in pa)  # deep copies
    assert isinstance(esb.pool, PPooling) and not isinstance(aib.pool, PPooling)
    assert model.saliency_layer() is esb.layer4  # the ESB's res_conv5
    single = _model("base+besm")
    assert not hasattr(single, "aib") and single.config.descriptor == "esb"
    n_trunk = sum(p.numel() for p in model.trunk.parameters())
    n_l34 = sum(p.numel() for p in aib.layer3.parameters()) + sum(p.numel() for p in aib.layer4.parameters())
    n_heads = sum(p.numel() for b in (aib, esb) for m in (b.pool, b.neck) for p in m.parameters())
    assert sum(p.numel() for p in model.parameters()) == n_trunk + 2 * n_l34 + n_heads


def test_saliency_layer_choices():
    for name in ("layer3", "layer4"):
        m = _model(saliency_layer=name)
        assert m.saliency_layer() is getattr(m.esb, name)
    m = _model(saliency_layer="layer2")
    assert m.saliency_layer() is m.trunk.layer2
    x, y = _batch(3)
    assert m.saliency(x, y).shape == (6, H // 8, W // 8)
    assert _model().saliency(x, y).shape == (6, H // 16, W // 16)  # last stride 1


def test_esb_trains_on_the_besm_erased_batch():
    model = _model(prob=1.0, ratio=0.2).train()
    x, y = _batch(4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    maps = model.saliency(x, y)  # CG-RAM of the current batch at the ESB's layer4
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"the saliency pass changed {k}"
    assert all(p.grad is None for p in model.parameters())
    out = model(x, y)
    res = out["erasing"]
    assert res.selected.all()
    assert (res.mask.flatten(1).sum(1) == round(0.2 * H * W)).all()
    expected, _ = erase_top(x, maps, 0.2)
    torch.testing.assert_close(res.images, expected)
    with torch.no_grad():
        esb_again = model.esb(model.trunk(res.images))
        aib_again = model.aib(model.trunk(x))
    torch.testing.assert_close(out["branches"]["esb"]["feat"], esb_again["feat"])
    torch.testing.assert_close(out["branches"]["aib"]["feat"], aib_again["feat"])


def test_no_erasing_when_nothing_is_drawn():
    model = _model(prob=0.0).train()
    x, y = _batch(5)
    out = model(x, y)
    assert out["erasing"] is None


def test_erasing_variants_need_ids():
    model = _model(prob=1.0).train()
    x, _ = _batch()
    assert model.needs_targets and not _model("base").needs_targets and not _model("base+bdb").needs_targets
    with pytest.raises(ValueError, match="targets=pids"):
        model(x)
    assert model(x, targets=torch.arange(3).repeat_interleave(2))["erasing"] is not None


def test_loss_is_eq1():
    model = _model().train()
    x, y = _batch(6)
    out = model(x, y)
    criterion = _criterion(model)
    ce, tri = CrossEntropyLabelSmooth(N_CLASSES, epsilon=0.0), TripletLoss(margin=0.3)
    expect = sum(ce(out["branches"][b]["logits"], y) + tri(out["branches"][b]["feat"], y) for b in ("aib", "esb"))
    torch.testing.assert_close(criterion.total(out, y), expect)
    no_triplet = build_criterion("reid", N_CLASSES, **criterion_options(VARIANTS["base"]))
    assert set(no_triplet(out, y)) == {"aib/id", "esb/id"}


def test_descriptor_is_a_sum_of_branch_cosine_scores():
    model = _model().eval()
    x, _ = _batch(7)
    with torch.no_grad():
        d = model(x)
        t = model.trunk(x)
        fa, fe = model.aib(t), model.esb(t)
    assert d.shape == (6, 2 * 512)
    s_aib = F.normalize(fa, dim=1) @ F.normalize(fa, dim=1).t()
    s_esb = F.normalize(fe, dim=1) @ F.normalize(fe, dim=1).t()
    torch.testing.assert_close(torch.cdist(d, d) ** 2, 2 * (2 - s_aib - s_esb), atol=1e-4, rtol=1e-4)
    assert _model(descriptor="aib").eval()(x).shape == (6, 512)


def test_batch_drop_mask_is_one_block():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        m = batch_drop_mask(24, 8, 0.3, 1.0, generator=g)
        zero_rows = (m == 0).all(1)
        assert int((m == 0).sum()) == round(0.3 * 24) * 8
        idx = torch.nonzero(zero_rows).flatten()
        assert int(idx[-1] - idx[0]) + 1 == len(idx)  # contiguous rows


def test_variant_configs_follow_the_tables():
    v = VARIANTS
    assert (v["esnet"].ratio, v["esnet"].prob) == (0.2, 0.5) and v["esnet"].branches == ("aib", "esb")
    assert (v["esb"].ratio, v["esb"].prob) == (0.1, 0.3) and v["esb"].branches == ("esb",)
    assert v["base"].branches == ("aib",) and not v["base"].triplet and v["aib"].triplet
    assert [v[k].esb_pooling for k in ("base+besm", "base+besm+gmp", "base+besm+ppool")] == ["gap", "gmp", "ppool"]
    assert v["base+bdb"].erasing == "bdb" and v["base+gradcam-erasing"].erasing == "gradcam"
    assert v["esnet-ppool-both"].aib_pooling == "ppool"
    assert v["base+random-erasing"].data_random_erasing == 0.5 and v["esnet"].data_random_erasing == 0.0
    with pytest.raises(ValueError, match="unknown ES-Net variant"):
        build("es-net-9", 3)
    with pytest.raises(ValueError, match="unknown ESNetConfig fields"):
        build("esnet", 3, backbone="resnet18", erasing_ratio=0.2)
    with pytest.raises(ValueError, match="erasing"):
        build("esnet", 3, backbone="resnet18", erasing="cutmix")
    with pytest.raises(TypeError, match="VARIANTS"):
        ESNet(3, "esnet")


def test_build_model_esnet_rebuilds_from_its_resolved_options():
    """The registry builds ES-Net from every ESNetConfig field, and ``options`` round-trips them."""
    model = _model("esb", ratio=0.3)
    assert model.options["ratio"] == 0.3 and model.options["label"] == VARIANTS["esb"].label
    torch.manual_seed(0)
    again = build_model("esnet", N_CLASSES, backbone="resnet18", **model.options)
    assert again.config == model.config == ESNetConfig(**model.options)
    assert again.state_dict().keys() == model.state_dict().keys()
    assert build_model("esnet", N_CLASSES, backbone="resnet18").config == ESNetConfig()


def test_presets_are_the_papers_schedules():
    from reidlib.engine.schedules import build_schedule

    person, vehicle = PRESETS["person"], PRESETS["vehicle"]
    assert (person.height, person.width, person.epochs, person.p, person.k) == (384, 128, 120, 16, 4)
    assert (vehicle.height, vehicle.width, vehicle.epochs, vehicle.milestones) == (256, 256, 60, (20, 40))
    s = build_schedule("warmup_multistep", person.lr, **person.schedule_options())
    # the preset's own schedule, in full, through the recipe and the engine: epoch 0 is never at rate 0
    from reidlib.engine.run import build_config_schedule
    from reidlib.papers.esnet import config

    cfg = config(paper_preset="person")
    first = [build_config_schedule(cfg).lr_at(e) for e in range(3)]
    assert first == pytest.approx([3.5e-5, 7e-5, 1.05e-4]) and first == [s.lr_at(e) for e in range(3)]
    assert (cfg.height, cfg.width, cfg.epochs, cfg.padding) == (384, 128, 120, 0)
    lrs = {e: s.lr_at(e) for e in (0, 9, 10, 39, 40, 69, 70, 119)}
    assert lrs[0] == pytest.approx(3.5e-5) and lrs[9] == pytest.approx(3.5e-4)
    assert lrs[39] == pytest.approx(3.5e-4) and lrs[40] == pytest.approx(3.5e-5) and lrs[70] == pytest.approx(3.5e-6)
    assert (person.optimizer, person.weight_decay, person.margin) == ("adam", 5e-4, 0.3)


def test_trainer_integration_with_a_hook():
    from reidlib.engine.trainer import LambdaHook, Trainer

    x, y = _batch(8, p=3, k=2)
    data = [(x[i], int(y[i]), 0, i) for i in range(len(y))]
    model = _model(prob=1.0)
    criterion = _criterion(model)
    seen = []
    # no hook hands the ids over: the trainer passes targets=pids because the model needs them
    hook = LambdaHook(on_forward=lambda t, b, out: seen.append(int(out["erasing"].mask.sum())))
    trainer = Trainer(model, criterion, torch.optim.Adam(model.parameters(), 1e-4),
                      data, [list(range(6))] * 2, epochs=1, hooks=[hook], progress=False)
    history = trainer.fit()
    assert seen == [6 * round(0.2 * H * W)] * 2
    assert set(history[0]["losses"]) >= {"aib/id", "aib/triplet", "esb/id", "esb/triplet", "total"}


def test_erased_batch_loss_probe_leaves_the_model_alone():
    model = _model("base").train()
    x, y = _batch(9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = model.erased_batch_loss(x, y, _criterion(model), ratio=0.2)
    assert set(probe) == {"erased/aib/id"} and probe["erased/aib/id"] > 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_saliency_pass_runs_in_float32_under_autocast():
    """CG-RAM's extra backward is computed in float32 even inside an AMP autocast region (issue: it ran under
    fp16); on the CPU, bfloat16 autocast stands in for CUDA's float16."""
    model = _model(prob=1.0).train()
    x, y = _batch(10)
    plain = model.saliency(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.saliency(x, y)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, plain)
