"""``run_training`` hands its hooks the dataset it built (``Hook.on_setup``) before the trainer exists."""
from __future__ import annotations

import pytest
from PIL import Image

from reidlib.engine.run import run_training
from reidlib.engine.trainer import Hook


class Recorder(Hook):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_setup(self, dataset, test_transform) -> None:
        self.calls.append("setup")
        self.dataset, self.test_transform = dataset, test_transform

    def on_train_start(self, trainer) -> None:
        self.calls.append("train_start")
        self.trainer_batches = trainer.steps_per_epoch

    def on_forward(self, trainer, batch, outputs):
        # the batch's indices are positions in the dataset's training records
        assert int(batch.indices.max()) < len(self.dataset.train)
        self.calls.append("forward")


@pytest.mark.slow
def test_on_setup_gets_the_dataset_and_the_test_transform_before_training(tmp_path, monkeypatch):
    from reidlib.papers import baseline

    monkeypatch.chdir(tmp_path)  # the run's checkpoint folder (runs/) is relative to the working directory
    cfg = baseline.config(synthped_preset="tiny", backbone="resnet18", pretrained=False, height=64, width=32,
                          epochs=1, P=4, K=2, warmup_epochs=0, milestones=[], eval_every=1, max_steps_per_epoch=2,
                          device="cpu", num_threads=1, run_name="hooks", output_dir=str(tmp_path), progress=False)
    hook = Recorder()
    record = run_training(cfg, hooks=[hook])
    assert hook.calls[:2] == ["setup", "train_start"] and hook.calls.count("setup") == 1
    assert hook.calls.count("forward") == 2
    assert record["dataset_summary"]["train"]["images"] == len(hook.dataset.train)
    image = hook.test_transform(Image.new("RGB", (32, 64)))
    assert tuple(image.shape) == (3, 64, 32)
