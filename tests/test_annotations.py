"""Real annotated pictures as instance targets (tests/data: one of each real set)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from metasift import annotations

DATA = Path(__file__).parent / "data"


def test_karyotype_mask_becomes_one_instance_per_chromosome():
    target = annotations.mfish_target(
        DATA / "mfish" / "V1301XY.png", DATA / "mfish" / "V1301XY_mask.png"
    )
    # 46,XY; the reader splits each homologue pair's label into its pieces: two homologues
    # that touch stay one piece (45 here; on mfish-dev 68 of 86 pictures exact)
    assert 44 <= target.count <= 47
    assert target.instances.shape == (517, 645) and target.instances.dtype == np.uint16
    with Image.open(DATA / "mfish" / "V1301XY_mask.png") as im:
        labels = np.asarray(im)
    assert np.array_equal(target.instances > 0, labels > 0)  # overlaps belong to a chromosome
    assert sorted({c["label"] for c in target.chromosomes}) == list(range(1, 25))


def test_boxes_become_instances_inside_their_boxes():
    target = annotations.box_target(DATA / "giemsa" / "1.png", DATA / "giemsa" / "1.txt")
    assert target.count == 50 == len(target.chromosomes)
    sizes = np.bincount(target.instances.ravel(), minlength=51)[1:]
    assert sizes.min() > 50  # every box found its chromosome's dark pixels
    for c in target.chromosomes:
        r0, c0, r1, c1 = c["box"]
        rows, cols = np.nonzero(target.instances == c["id"] + 1)
        assert rows.min() >= r0 and rows.max() <= r1 and cols.min() >= c0 and cols.max() <= c1
    assert (target.classes == annotations.UNKNOWN).any()  # nuclei: the boxes do not say


def test_mask_file_round_trip(tmp_path):
    instances = np.arange(12, dtype=np.uint16).reshape(3, 4)
    classes = (instances % 5).astype(np.uint8)
    annotations.write_masks(tmp_path / "m.tif", instances, classes)
    back = annotations.read_masks(tmp_path / "m.tif")
    assert np.array_equal(back[0], instances) and np.array_equal(back[1], classes)
    assert [p.name for p in tmp_path.iterdir()] == ["m.tif"]  # no temporary file left


def test_a_folder_that_is_no_annotated_set_is_refused(tmp_path):
    with pytest.raises(ValueError, match="manifest"):
        list(annotations.read_targets(tmp_path))
