"""reidlib.viz.besm_explorer driven from Python on a tiny network: the controls change what BESM
erases on the query and on the batch."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from reidlib.viz import BESMExplorer, besm_explorer, denormalize, normalize


class Tiny(nn.Module):
    """conv-bn-relu | conv-relu | conv-relu | GAP -> (B, D), in both modes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.layer1 = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer2(self.layer1(self.stem(x))).mean((2, 3))


@pytest.fixture
def app() -> BESMExplorer:
    model = Tiny().eval()
    g = torch.Generator().manual_seed(0)
    queries = normalize(torch.rand(3, 3, 16, 8, generator=g))
    partners = normalize(torch.rand(3, 3, 16, 8, generator=g))
    batch = normalize(torch.rand(6, 3, 16, 8, generator=g)), torch.tensor([0, 0, 1, 1, 2, 2])
    return besm_explorer(model, queries, partners, {"layer1": model.layer1, "layer2": model.layer2}, batch,
                         labels=["a", "b", "c"], ratio=0.25, prob=1.0)


def test_the_query_loses_exactly_round_r_h_w_pixels(app):
    ex = app.explorer
    assert ex.controls["layer"].value == "layer2"          # the last layer is shown first
    assert int(ex.mask.sum()) == round(0.25 * 16 * 8)
    ex.controls["ratio"].value = 0.1
    assert int(ex.mask.sum()) == round(0.1 * 16 * 8)
    # erased pixels hold the mean colour (0 after normalisation); the others are the query's
    q = app.queries[0]
    assert torch.allclose(normalize(ex.erased)[:, ex.mask], torch.zeros(3, int(ex.mask.sum())), atol=1e-6)
    assert torch.equal(ex.erased[:, ~ex.mask], q[:, ~ex.mask])


def test_layer_and_image_controls_change_the_mask(app):
    ex = app.explorer
    mask2 = ex.mask.clone()
    ex.controls["layer"].value = "layer1"
    assert not torch.equal(ex.mask, mask2)
    ex.controls["image"].value = 2
    assert torch.equal(ex.image, app.queries[2])
    assert torch.allclose(app.queries[2], denormalize(normalize(app.queries[2])), atol=1e-6)


def test_batch_row_follows_the_probability(app):
    res = app.batch_result
    assert res.selected.all() and len(app.views["batch"].children) == 6
    assert (res.mask.flatten(1).sum(1) == round(0.25 * 16 * 8)).all()
    app.prob.value = 0.0
    assert not app.batch_result.selected.any() and not app.batch_result.mask.any()
    assert app.views["cg_ram"].value and app.views["random"].value


def test_bad_arguments():
    model = Tiny().eval()
    x = torch.zeros(2, 3, 16, 8)
    with pytest.raises(ValueError, match="partner"):
        besm_explorer(model, x, x[:1], {"layer1": model.layer1}, (x, torch.tensor([0, 0])))
    with pytest.raises(ValueError, match="layers"):
        besm_explorer(model, x, x, {}, (x, torch.tensor([0, 0])))


def test_moving_a_control_updates_the_batch_images_in_place(app):
    row = app.views["batch"].children
    shown = [im.value for im in row]
    app.prob.value = 0.0                     # nothing erased now: other images, the same widgets (no leak)
    assert app.views["batch"].children == row and all(a is b for a, b in zip(app.views["batch"].children, row))
    assert [im.value for im in row] != shown
