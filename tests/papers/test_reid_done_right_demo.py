"""The saliency page's measurement: synthped's detail and person masks, and the share of a model's implicit
attention on them (against the masks' area), on an untrained model (the demo models train in the book)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidlib.data import build_dataset, synthped
from reidlib.data.transforms import build_aspect_transforms
from reidlib.models import build_model
from reidlib.papers._recipe import Demo
from reidlib.papers.reid_done_right_demo import attention_on_parts
from reidlib.saliency.parts import DETAILS, part_masks


def test_part_masks_and_attention_shares():
    ds = build_dataset("synthped", synthped.ensure("tiny"))
    records = ds.query[:6]
    masks = part_masks(records)
    assert masks["details"].shape == masks["person"].shape == (6, 128, 64)
    assert not (masks["details"] & ~masks["person"]).any()  # the details are on the person
    one = synthped.load_part_masks(records[0].path)
    assert np.array_equal(masks["details"][0].numpy(), np.any([one[p] for p in DETAILS], axis=0))
    torch.manual_seed(0)
    model = build_model("good_practices", ds.num_train_pids, backbone="resnet18").eval()
    demo = Demo(model, ds, build_aspect_transforms(128, train=False), "untrained", "full")
    frame = attention_on_parts(demo, records, top=10)
    assert len(frame) == 6 and set(frame.columns) == {"share on details", "share on person", "area of details",
                                                      "area of person"}
    shares = frame[["share on details", "share on person"]].to_numpy()
    assert np.all((shares >= 0) & (shares <= 1) | np.isnan(shares))
    assert np.all(frame["share on details"].fillna(0) <= frame["share on person"].fillna(1) + 1e-6)
    np.testing.assert_allclose(frame["area of person"], masks["person"].float().mean((1, 2)).numpy())


def test_drawn_descriptors_follow_the_sample():
    from reidlib.papers.reid_done_right_demo import draw_descriptors

    g = torch.Generator().manual_seed(0)
    sample = torch.nn.functional.normalize(torch.randn(400, 32, generator=g) + 2.0 * torch.arange(32) / 32, dim=1)
    blocks = list(draw_descriptors(sample, 2500, rank=8, block=1000))
    assert [len(b) for b in blocks] == [1000, 1000, 500]
    drawn = torch.cat(blocks)
    torch.testing.assert_close(drawn.norm(dim=1), torch.full((2500,), float(sample.norm(dim=1).mean())))
    assert (drawn.mean(0) - sample.mean(0)).abs().max() < 0.05  # the sample's centre, up to the rescaling
    assert torch.equal(torch.cat(list(draw_descriptors(sample, 2500, rank=8, block=1000))), drawn)  # seeded


def test_the_distractor_curve_falls_as_distractors_join():
    from reidlib.papers.reid_done_right_demo import distractor_curve

    ds = build_dataset("synthped", synthped.ensure("tiny"))
    torch.manual_seed(0)
    model = build_model("good_practices", ds.num_train_pids, backbone="resnet18").eval()
    demo = Demo(model, ds, build_aspect_transforms(128, train=False), "untrained", "test-untrained")
    curve = distractor_curve(demo, image_counts=(0, 40), drawn_counts=(300,), cache=False)
    assert list(curve["added"]) == [0, 40, 300] and list(curve["gallery"]) == [len(ds.gallery) + n for n in (0, 40, 300)]
    assert curve["mAP"].is_monotonic_decreasing and (curve["mAP"] > 0).all()


def test_distractor_records_are_pid_0000_in_a_fixed_order_and_bad_counts_are_refused():
    from reidlib.papers.reid_done_right_demo import MAX_DISTRACTOR_IMAGES, distractor_records

    first = distractor_records(30)
    assert len(first) == 30 and all(r.pid == 0 for r in first)
    assert [r.path for r in distractor_records(10)] == [r.path for r in first[:10]]
    assert distractor_records(0) == []
    for bad in (-1, 2.5, True, MAX_DISTRACTOR_IMAGES + 1):
        with pytest.raises(ValueError, match="count"):
            distractor_records(bad)


def test_the_weights_fingerprint_tells_weights_apart():
    from reidlib.papers.reid_done_right_demo import weights_fingerprint

    torch.manual_seed(0)
    a = torch.nn.Linear(4, 3)
    b = torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    assert weights_fingerprint(a) == weights_fingerprint(b) and len(weights_fingerprint(a)) == 12
    with torch.no_grad():
        b.bias[0] += 1e-6
    assert weights_fingerprint(a) != weights_fingerprint(b)


def test_the_distractor_record_is_read_back_with_its_provenance(tmp_path):
    import pandas as pd

    from reidlib.papers.reid_done_right_demo import load_distractor_record

    assert load_distractor_record(tmp_path) is None
    folder = tmp_path / "reid_done_right" / "distractor_curve"
    folder.mkdir(parents=True)
    pd.DataFrame({"model": ["baseline"], "added": [0], "mAP": [50.0], "device": ["cpu"]}).to_csv(folder / "cpu.csv",
                                                                                              index=False)
    back = load_distractor_record(tmp_path)
    assert back.to_dict("records") == [{"model": "baseline", "added": 0, "mAP": 50.0, "device": "cpu", "record": "cpu"}]


def test_the_distractor_plot_draws_one_line_per_model_and_marks_where_images_end():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from reidlib.papers.reid_done_right_demo import plot_distractor_curves

    rows = [{"model": m, "distractors": kind, "added": n, "mAP": 50.0 - i, "rank-1": 60.0 - i}
            for m in ("good-practices", "baseline")
            for i, (kind, n) in enumerate([("synthped images", 0), ("synthped images", 2000), ("drawn descriptors", 9000)])]
    fig = plot_distractor_curves(pd.DataFrame(rows))
    for ax in fig.axes:
        lines = ax.get_lines()
        assert [line.get_label() for line in lines[:2]] == ["good-practices", "baseline"]
        assert list(lines[0].get_xdata()) == [100, 2000, 9000]  # 0 drawn at 100 on the log axis
        assert list(lines[2].get_xdata()) == [2000, 2000]  # the dotted line at the last image count
