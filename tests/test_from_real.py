"""Rejects made from real annotated pictures (metasift.synth.from_real), on tests/data's real
DAPI and Giemsa pictures, measured with the training-free counter."""

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from metasift import annotations
from metasift.count import count_file
from metasift.io import decode
from metasift.synth import from_real, save_image

DATA = Path(__file__).parent / "data"


def _mfish():
    return annotations.mfish_target(
        DATA / "mfish" / "V1301XY.png", DATA / "mfish" / "V1301XY_mask.png"
    )


def test_too_few_erases_chromosomes_and_keeps_the_rest(tmp_path):
    target = _mfish()
    picture = decode(target.image)[0]
    rng = np.random.default_rng(0)
    few, kept_ids = from_real.too_few(picture, target.instances, rng, keep_range=(20, 20))
    assert len(kept_ids) == 20 and few.shape == picture.shape and few.dtype == picture.dtype
    kept = np.isin(target.instances, kept_ids)
    assert np.array_equal(few[kept], picture[kept])  # the kept chromosomes: untouched
    erased = (target.instances > 0) & ~kept
    assert erased.sum() > 0.3 * (target.instances > 0).sum()
    # an erased chromosome becomes the spread's background (its glow included), not a black hole
    ring = ndi.binary_dilation(target.instances > 0, iterations=12) & ~ndi.binary_dilation(
        target.instances > 0, iterations=6
    )
    assert picture[ring].mean() - 2 < few[erased].mean() < picture[erased].mean() - 40
    save_image(tmp_path / "few.png", few, "png")
    before = count_file(target.image).chromosome_count
    after = count_file(tmp_path / "few.png").chromosome_count
    assert before >= 40 and after < 30, (before, after)


def test_mixed_pastes_a_second_spread_beside_the_first():
    target = _mfish()
    picture = decode(target.image)[0]
    rng = np.random.default_rng(1)
    mirrored = picture[:, ::-1], target.instances[:, ::-1]
    two = from_real.mixed(picture, target.instances, *mirrored, rng)
    h, w = picture.shape
    assert two.shape[0] > h or two.shape[1] > w
    assert np.array_equal(two[: h - 6, : w - 6], picture[: h - 6, : w - 6])
    beyond = two[:, w:] if two.shape[1] > w else two[h:, :]
    # the second spread as bright as the first (the picture's bright nucleus is not pasted)
    bright = (picture[target.instances > 0] > 150).sum()
    assert 0.8 * bright < (beyond > 150).sum() < 2 * bright


def test_derive_writes_a_labelled_set_and_leaves_the_pictures_alone(tmp_path):
    giemsa = annotations.box_target(DATA / "giemsa" / "1.png", DATA / "giemsa" / "1.txt")
    sources = [DATA / "mfish" / "V1301XY.png", DATA / "giemsa" / "1.png"]
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in sources]
    items = [("dapi", _mfish(), "available", "dapi", 2), ("giemsa", giemsa, "available", "g", 1)]
    rows = from_real.derive(items, tmp_path / "set", seed=3)
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in sources] == digest
    labels = [label for _, label, _ in rows]
    assert labels.count("available") == 3 and labels.count("too_few") == 3
    assert labels.count("mixed") == 3
    with open(tmp_path / "set" / "labels.csv", newline="") as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == 8  # each picture once: 2 originals, 3 too_few, 3 mixed
    for r in written:
        assert (tmp_path / "set" / r["path"]).is_file()
    few = count_file(tmp_path / "set" / "too_few" / "giemsa_0.png")  # RGB Giemsa kept RGB
    assert few.chromosome_count < 40
    again = from_real.derive(items, tmp_path / "again", seed=3)
    assert [p.read_bytes() for p, _, _ in again] == [p.read_bytes() for p, _, _ in rows]


def test_derive_refuses_what_would_go_wrong(tmp_path):
    target = _mfish()
    with pytest.raises(ValueError, match="one name"):
        from_real.derive([("a", target, "available", "g", 1)] * 2, tmp_path / "x")
    with pytest.raises(ValueError, match="one name"):  # a_0 is also a's first made picture
        from_real.derive([("a", target, "available", "g", 1), ("a_0", target, "available", "g", 1)],
                         tmp_path / "x")  # fmt: skip
    (tmp_path / "full" / "available").mkdir(parents=True)  # a labelled set: its pictures stay
    shutil.copy(target.image, tmp_path / "full" / "available" / "a.png")
    (tmp_path / "full" / "labels.csv").write_text("path,label\n")
    with pytest.raises(ValueError, match="not empty"):
        from_real.derive([("a", target, "available", "g", 1)], tmp_path / "full")
    assert (tmp_path / "full" / "labels.csv").read_text() == "path,label\n"
    assert (tmp_path / "full" / "available" / "a.png").read_bytes() == target.image.read_bytes()
    few = annotations.InstanceTarget(target.image, (target.instances == 1).astype(np.uint16),
                                     target.classes, "karyotype mask")  # fmt: skip
    with pytest.raises(ValueError, match=r"V1301XY\.png: 1 chromosomes annotated"):
        from_real.derive([("a", few, "available", "g", 1)], tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
