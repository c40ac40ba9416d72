"""A trunk shared up to any stage, branches owning deep copies of the later stages."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from reidlib.models import build_backbone
from reidlib.models.branches import STAGES, split_backbone, stage_channels


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_lite0"])
@pytest.mark.parametrize("split", ["layer1", "layer2", "layer3", "layer4"])
def test_split_anywhere_composes_to_the_backbone(split, backbone):
    torch.manual_seed(0)
    net = build_backbone(backbone, last_stride=2).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        whole = net(x)
        trunk, own = split_backbone(net, split, ["a", "b"])
        t = trunk(x)
        torch.testing.assert_close(own["a"](t), whole)
        torch.testing.assert_close(own["b"](t), whole)  # a copy starts from the same weights
    i = STAGES.index(split)
    assert trunk.stage_names == STAGES[:i] and own["b"].stage_names == STAGES[i:]
    pa, pb = dict(own["a"].named_parameters()), dict(own["b"].named_parameters())
    assert pa.keys() == pb.keys() and all(pa[k] is not pb[k] for k in pa)  # owned, not shared


def test_the_first_branch_keeps_the_backbones_modules_and_trunk_is_shared():
    net = build_backbone("resnet18")
    trunk, own = split_backbone(net, "layer3", ["aib", "esb"])
    assert own["aib"].layer3 is net.layer3 and own["esb"].layer3 is not net.layer3
    assert trunk.layer2 is net.layer2
    assert stage_channels(net) == {"stem": 64, "layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}


def test_errors_name_what_is_wrong():
    net = build_backbone("resnet18")
    with pytest.raises(ValueError, match=r"split must be .*'layer1'.*got 'layer5'"):
        split_backbone(net, "layer5", ["a"])
    with pytest.raises(ValueError, match="branches must be distinct"):
        split_backbone(net, "layer3", ["a", "a"])
    with pytest.raises(ValueError, match=r"has no stage\(s\)"):
        split_backbone(nn.Linear(2, 2), "layer3", ["a"])
