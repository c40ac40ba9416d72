"""Bad inputs to synthped.generate / synthped.ensure: every parameter is checked for its type and
range before anything is written, the error names the parameter (or the path) and what is
expected, and the manifest is always valid JSON (no NaN / Infinity)."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from reidlib.data import synthped

FAST = dict(num_train_ids=2, num_test_ids=2, cameras=2, height=32, width=16, supersample=1, progress=False)


def strict_json(text: str):
    def refuse(constant: str):
        raise AssertionError(f"manifest.json holds {constant}, which is not JSON")
    return json.loads(text, parse_constant=refuse)


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kwargs, pattern", [
    # NaN passed every range check (comparisons with NaN are False) and json.dumps wrote it as NaN
    (dict(occlusion=float("nan")), r"occlusion must be a number >= 0\.0 .*\(a finite int or float\), got float nan"),
    (dict(occlusion=math.inf), r"occlusion must be .* got float inf"),
    (dict(occlusion=-0.5), r"occlusion must be a number >= 0\.0 .*got -0\.5"),
    (dict(seed=-1), r"seed must be an int >= 0 .*got -1"),
    (dict(seed=1.5), r"seed must be an int >= 0 .*got 1\.5"),
    (dict(seed="0"), r"seed must be an int >= 0 .*got '0'"),
    (dict(seed=True), r"seed must be an int >= 0 .*got True"),
    (dict(hard_group_share="0.3"), r"hard_group_share must be a number in \[0\.0, 1\.0\] .*got str '0\.3'"),
    (dict(hard_group_share=float("nan")), r"hard_group_share must be .* got float nan"),
    (dict(hard_group_size=500), r"hard_group_size must be an int in 2\.\.20 .*got 500"),
    (dict(hard_group_size=2.0), r"hard_group_size must be an int in 2\.\.20 .*got 2\.0"),
    (dict(num_train_ids=2.0), r"num_train_ids must be a positive int, got 2\.0"),
    (dict(num_test_ids=True), r"num_test_ids must be a positive int, got True"),
    (dict(cameras="6"), r"cameras must be an int in 2\.\.9 .*got '6'"),
    (dict(height=32.5), r"height must be an int >= 32, got 32\.5"),
    (dict(width=None), r"width must be an int >= 16, got None"),
    (dict(junk_share="0.1"), r"junk_share must be a number in \[0\.0, 0\.9\] .*got str '0\.1'"),
    (dict(distractor_share=float("nan")), r"distractor_share must be .* got float nan"),
    (dict(junk_share=-0.1), r"junk_share must be a number in \[0\.0, 0\.9\], got -0\.1"),
    (dict(train_images_per_camera=(1.5, 2)), r"train_images_per_camera must be a \(low, high\) pair of ints, got \(1\.5, 2\)"),
    (dict(gallery_images_per_camera=("1", "2")), r"gallery_images_per_camera must be a \(low, high\) pair of ints"),
    (dict(train_images_per_camera=(1, 2, 3)), r"train_images_per_camera must be a \(low, high\) pair"),
    (dict(supersample=2.0), r"supersample must be 1, 2, 3 or 4, got 2\.0"),
    (dict(workers=True), r"workers must be a positive int, got True"),
    (dict(overwrite="no"), r"overwrite must be True or False, got 'no'"),
    (dict(progress="yes"), r"progress must be True or False, got 'yes'"),
])
def test_bad_parameters_are_named_and_nothing_is_written(tmp_path: Path, kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        synthped.generate(tmp_path / "d", **(FAST | kwargs))
    assert list(tmp_path.iterdir()) == []


def test_root_that_is_a_file_is_refused_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "synthped.zip"
    target.write_bytes(b"mine")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=r"root .*synthped\.zip is an existing file, not a folder"):
            synthped.generate(target, **FAST, overwrite=overwrite)
    assert target.read_bytes() == b"mine" and sorted(p.name for p in tmp_path.iterdir()) == ["synthped.zip"]
    with pytest.raises(ValueError, match=r"root .*synthped\.zip/d lies below .*synthped\.zip, which is a file"):
        synthped.generate(target / "d", **FAST)
    with pytest.raises(ValueError, match=r"root must be a folder path \(str or os\.PathLike\), got NoneType None"):
        synthped.generate(None, **FAST)


def test_manifest_is_valid_json_with_the_parameters_given(tmp_path: Path) -> None:
    root = synthped.generate(tmp_path / "d", **FAST, occlusion=0, seed=4)
    manifest = strict_json((root / "manifest.json").read_text())
    assert manifest["params"]["occlusion"] == 0 and manifest["params"]["seed"] == 4
    assert all(c["occluder_prob"] == 0.0 for c in manifest["camera_settings"])


def test_numpy_scalars_are_accepted_and_give_the_same_bytes(tmp_path: Path) -> None:
    plain = synthped.generate(tmp_path / "plain", **FAST, seed=2, occlusion=1.5, hard_group_share=0.5)
    numpy = synthped.generate(tmp_path / "numpy", **(FAST | dict(num_train_ids=np.int64(2), num_test_ids=np.int32(2))),
                              seed=np.int64(2), occlusion=np.float64(1.5), hard_group_share=np.float64(0.5))
    assert file_hashes(plain) == file_hashes(numpy)
    assert strict_json((numpy / "manifest.json").read_text())["params"]["seed"] == 2


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(seed=-1), r"seed must be an int >= 0 .*got -1"),
    (dict(seed=0.5), r"seed must be an int >= 0 .*got 0\.5"),
    (dict(preset=["tiny"]), r"unknown synthped preset \['tiny'\]; expected one of \['default', 'distractors', "
                                r"'large', 'tiny'\]"),
    (dict(workers=0), r"workers must be a positive int, got 0"),
    (dict(progress=None), r"progress must be True or False, got None"),
])
def test_ensure_bad_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict, pattern: str) -> None:
    monkeypatch.setenv("REIDLIB_DATA", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=pattern):
        synthped.ensure(**kwargs)
    assert not (tmp_path / "cache").exists()


def test_ensure_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("not a folder")
    with pytest.raises(ValueError, match=r"root .*cache is an existing file, not a folder.*synthped-<preset>-s<seed>"):
        synthped.ensure("tiny", root=tmp_path / "cache")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "synthped-tiny-s0").write_text("in the way")
    with pytest.raises(ValueError, match=r"synthped-tiny-s0 is an existing file, not a folder"):
        synthped.ensure("tiny", root=tmp_path / "base")
