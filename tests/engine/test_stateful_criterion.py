"""A criterion with state (OIM's lookup table) lives on the trainer's device, is saved in the
checkpoint and restored on resume: a run stopped after one epoch and resumed ends with the same
table and weights as one that never stopped."""
from __future__ import annotations

import torch
from test_engine_toys import make_trainer
from torch import nn

from reidlib.losses import OIMLoss


class IdPlusOIM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.oim = OIMLoss(8, 8)

    def forward(self, outputs, batch):
        return {"id": nn.functional.cross_entropy(outputs["logits"], batch.pids),
                "oim": self.oim(outputs["feat"], batch.pids)}


def test_resume_restores_the_criterion_state(tmp_path):
    whole = make_trainer(tmp_path / "a", epochs=2, criterion=IdPlusOIM())
    whole.fit()
    first = make_trainer(tmp_path / "b", epochs=1, criterion=IdPlusOIM())
    first.fit()
    assert first.state_dict()["criterion"]["oim.lut"].abs().sum() > 0  # the table moved and is saved
    resumed = make_trainer(tmp_path / "b", epochs=2, criterion=IdPlusOIM())
    resumed.fit(resume=True)
    assert torch.equal(resumed.criterion.oim.lut, whole.criterion.oim.lut)
    for k, v in whole.module.state_dict().items():
        assert torch.equal(v, resumed.module.state_dict()[k]), k


def test_a_fresh_criterion_would_not_resume_the_same(tmp_path):
    # the check above can fail: dropping the saved table changes the resumed run
    whole = make_trainer(tmp_path / "a", epochs=2, criterion=IdPlusOIM())
    whole.fit()
    make_trainer(tmp_path / "b", epochs=1, criterion=IdPlusOIM()).fit()
    resumed = make_trainer(tmp_path / "b", epochs=2, criterion=IdPlusOIM())
    state = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    state["criterion"] = None
    torch.save(state, tmp_path / "b" / "last.pt")
    resumed.fit(resume=True)
    assert not torch.equal(resumed.criterion.oim.lut, whole.criterion.oim.lut)
