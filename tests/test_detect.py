"""The detector's decoding and findings, on hand-made network outputs (no model needed)."""

from dataclasses import replace

import numpy as np
import pytest

from metasift.detect import (
    OUTPUTS,
    TARGET_WIDTH,
    DecodeConfig,
    decode,
    encode,
    findings,
    heat_map,
    scale_for,
)

W = int(TARGET_WIDTH)


def outputs(shape, centres, foreground, boundary=None) -> np.ndarray:
    """Probabilities as a trained network would give them."""
    probs = np.zeros((len(OUTPUTS), *shape), np.float32)
    probs[0] = heat_map(np.array(centres, float).reshape(-1, 2), shape)
    probs[1] = foreground
    if boundary is not None:
        probs[2] = boundary
    return probs


def test_two_touching_chromosomes_become_two():
    fg = np.zeros((80, 80), np.float32)
    fg[20:27, 10:40] = 1  # two chromosomes end to end: one connected piece of foreground
    fg[20:27, 40:70] = 1
    line = np.zeros_like(fg)
    line[20:27, 39:41] = 1
    got = decode(outputs(fg.shape, [(23, 25), (23, 55)], fg, line))
    assert got.instances.max() == 2
    left, right = got.instances[23, 20], got.instances[23, 60]
    assert {left, right} == {1, 2}  # each half is its own chromosome
    assert got.count_sd < 0.05  # both peaks are sure


def test_a_doubtful_peak_is_uncertainty_not_a_chromosome():
    fg = np.zeros((60, 60), np.float32)
    fg[20:27, 10:50] = 1
    probs = outputs(fg.shape, [(23, 18)], fg)
    probs[0] = np.maximum(probs[0], 0.2 * heat_map(np.array([[23.0, 42.0]]), fg.shape))
    got = decode(probs)
    assert got.instances.max() == 1
    assert got.count_sd == pytest.approx(0.4, abs=0.01)  # one coin of p = 0.2


def test_the_pictures_own_threshold_follows_its_peaks():
    """soft: a picture's peaks add up as min(1, height / soft), and that many of the highest
    are chromosomes, however low the network's peaks run on this picture."""
    fg = np.zeros((40, 130), np.float32)
    fg[16:23, 5:125] = 1
    heights = (0.9, 0.9, 0.28, 0.12)  # whole, whole, 0.7 of one, below `unsure`
    probs = outputs(fg.shape, [], fg)
    for h, col in zip(heights, (15, 45, 75, 105)):
        probs[0] = np.maximum(probs[0], h * heat_map(np.array([[19.0, col]]), fg.shape))
    own = DecodeConfig(soft=0.4, peak=0.15, unsure=0.15, orphan_area=100)
    got = decode(probs, own)
    assert got.instances.max() == 3  # round(1 + 1 + 0.7)
    assert got.instances[19, 105] == got.instances[19, 75]  # the 0.12 peak: not a chromosome
    assert got.count_sd == pytest.approx(np.sqrt(0.7 * 0.3), abs=0.01)
    assert decode(probs, DecodeConfig(peak=0.5, orphan_area=100)).instances.max() == 2
    dim = probs.copy()
    dim[0] *= 0.5  # the same picture, its peaks half as high (0.45, 0.45, 0.14, 0.06)
    assert decode(dim, DecodeConfig(peak=0.5, orphan_area=100)).instances.max() == 0
    assert decode(dim, own).instances.max() == 2  # 1 + 1: 0.14 is below `unsure`
    lower = replace(own, soft=0.2, peak=0.1, unsure=0.1)  # a lower height counts whole
    assert decode(dim, lower).instances.max() == 3  # round(1 + 1 + 0.7)
    with pytest.raises(ValueError, match="soft"):
        DecodeConfig(soft=1.0)


def test_foreground_no_centre_reached_still_counts():
    fg = np.zeros((60, 60), np.float32)
    fg[10:17, 5:35] = 1
    fg[40:47, 20:50] = 1  # its centre was missed
    got = decode(outputs(fg.shape, [(13, 20)], fg))
    assert got.instances.max() == 2
    off = decode(outputs(fg.shape, [(13, 20)], fg), DecodeConfig(orphan_area=100))
    assert off.instances.max() == 1


@pytest.mark.parametrize("n", [0, 1, 5, 30])
def test_encoded_targets_decode_to_the_same_count(n):
    """Targets made from instance masks, read back as outputs, give every chromosome once,
    touching ones included."""
    rng = np.random.default_rng(n)
    instances = np.zeros((400, 400), np.uint16)
    for k in range(1, n + 1):
        r, c = 20 * (k // 6) + 40, 50 * (k % 6) + 30
        length = int(rng.integers(3, 7)) * W
        instances[r : r + W + 1, c : c + length] = k  # rows of chromosomes touching side by side
    classes = (instances > 0).astype(np.uint8)
    targets = encode(instances, classes, 0.5, (200, 200), full=False)
    got = decode(targets[: len(OUTPUTS)].astype(np.float32))
    assert got.instances.max() == n


def test_findings_go_through_the_criteria():
    fg = np.zeros((100, 100), np.float32)
    centres = []
    for i in range(3):
        fg[10 + 20 * i : 17 + 20 * i, 10:40] = 1
        centres.append((13 + 20 * i, 25))
    probs = outputs(fg.shape, centres, fg)
    probs[4, 60:90, 60:90] = 1  # a nucleus, away from the chromosomes
    found = findings(decode(probs), 0.5)
    assert found.chromosome_count == 3
    assert found.verdicts == ["too_few"]
    assert found.nuclei_count == 1 and found.debris_over_chromosomes == 0
    assert "3 chromosomes (< 40)" in found.reason
    top, left, bottom, right = found.chromosomes[0].box
    assert (top, left, bottom, right) == (20, 20, 34, 80)  # picture pixels: twice the input's


def test_each_chromosome_has_its_outline_centromere_and_score(tmp_path):
    """The findings carry what the overlay draws: an outline around each chromosome (picture
    pixels), its centromere where the centromere map is high, and its centre peak's height."""
    from PIL import Image

    from metasift.count import write_overlay

    fg = np.zeros((60, 60), np.float32)
    fg[10:17, 10:40] = 1
    fg[40:47, 10:40] = 1
    probs = outputs(fg.shape, [(13, 25), (43, 25)], fg)
    probs[3] = 0.9 * heat_map(np.array([[13.0, 30.0]]), fg.shape)  # only the first has one
    found = findings(decode(probs), 0.5)
    first, second = sorted(found.chromosomes, key=lambda c: c.box[0])
    rows, cols = np.array(first.outline).T
    assert 18 <= rows.min() <= 21 and 32 <= rows.max() <= 35  # rows 10-16 of the input, x 2
    assert 18 <= cols.min() <= 21 and 78 <= cols.max() <= 81
    assert len(first.outline) <= 12  # a rectangle's corners, its straight sides left out
    assert first.centromeres == [(26.0, 60.0)] and second.centromeres == []
    assert first.score == pytest.approx(1.0, abs=0.01)
    picture = np.ones((120, 120), np.float32)
    picture[20:34, 20:80] = 0.2
    target = write_overlay(picture, found, tmp_path / "overlay.png")
    drawn = np.asarray(Image.open(target).convert("RGB")).astype(int)
    band = (drawn.shape[0] - 120) // 2
    assert (drawn[26 + band, 60] == (0, 220, 230)).all()  # the centromere's dot
    assert (drawn[20 + band : 35 + band, 18:22] == (0, 190, 0)).all(-1).any()  # the outline


def test_sister_chromatids_apart_measure_as_one_body():
    """``bodies``: chromosomes whose two chromatids lie apart are as wide as both together;
    solid ones measure as the counter measures them."""
    from metasift.detect import measure_width

    apart = np.ones((400, 400), np.float32)
    solid = np.ones((400, 400), np.float32)
    for k in range(30):
        r, c = 30 + 55 * (k // 6), 20 + 60 * (k % 6)
        apart[r : r + 40, c : c + 5] = 0.2  # two chromatids 5 pixels wide, 3 apart
        apart[r : r + 40, c + 8 : c + 13] = 0.2
        solid[r : r + 40, c : c + 12] = 0.2
    body = measure_width(apart, "bodies")
    assert body >= 1.35 * measure_width(apart)  # one chromatid's width is not the body's
    assert abs(body - measure_width(solid)) <= 2  # about as wide as a solid one of that size
    assert measure_width(solid, "bodies") == measure_width(solid)
    with pytest.raises(ValueError, match="width must be"):
        measure_width(solid, "middle")


def test_in_fluorescence_the_width_is_never_closed():
    """A DAPI spread's glow joins neighbouring chromosomes: closing it merges neighbours, not
    sister chromatids, and would make them look wider than they are (mfish-dev V1301XY: 10
    pixels wide, 14 after the closing)."""
    from metasift.detect import measure_width
    from metasift.io import read_image

    image, info = read_image(DATA / "mfish" / "V1301XY.png")
    assert info.polarity == "bright"
    plain = measure_width(image)
    assert measure_width(image, "bodies", polarity="dark") >= 1.35 * plain
    assert measure_width(image, "bodies", polarity=info.polarity) == plain


def test_a_nucleus_over_chromosomes_is_debris():
    fg = np.zeros((100, 100), np.float32)
    fg[40:47, 5:95] = 1  # a chromosome running under the nucleus, out on both sides
    probs = outputs(fg.shape, [(43, 15), (43, 85)], fg)
    probs[4, 30:60, 35:65] = 1
    probs[1][probs[4] > 0.5] = 0
    found = findings(decode(probs), 1.0, min_chromosomes=0)
    assert found.debris_over_chromosomes == 1
    assert "debris" in found.verdicts


def test_a_particle_over_chromosomes_counts_from_the_debris_level():
    """The debris output marks a particle lying over a chromosome; ``debris_level`` is how sure
    it must be (the bundled detector's is 0.35: its debris output runs low)."""
    from metasift.detect import DecodeConfig

    fg = np.zeros((100, 100), np.float32)
    fg[40:47, 5:95] = 1  # a chromosome running under the particle, out on both sides
    probs = outputs(fg.shape, [(43, 15), (43, 85)], fg)
    probs[5, 36:51, 43:58] = 0.4  # a particle 15 pixels across, marked at 0.4
    probs[1][probs[5] > 0] = 0
    unsure = findings(decode(probs), 1.0, min_chromosomes=0)
    assert unsure.debris_over_chromosomes == 0 and unsure.verdicts == []
    found = findings(decode(probs, DecodeConfig(debris_level=0.35)), 1.0, min_chromosomes=0)
    assert len(found.debris_objects) == 1 and found.debris_over_chromosomes == 1
    assert found.verdicts == ["debris"]


def test_nothing_found_is_zero_and_too_few():
    found = findings(decode(np.zeros((len(OUTPUTS), 64, 64), np.float32)), 1.0)
    assert found.chromosome_count == 0 and found.verdicts == ["too_few"]
    assert scale_for((1024, 1280), None) == pytest.approx(0.5)


def test_bad_outputs_and_settings_say_what_is_wrong():
    with pytest.raises(ValueError, match="outputs must be"):
        decode(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="peak"):
        DecodeConfig(peak=1.5)


# ---- the bundled detector --------------------------------------------------------------------
DATA = __import__("pathlib").Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def bundled():
    from metasift.detect import Detector

    return Detector()


@pytest.mark.parametrize("kind", ["blank", "black", "nuclei"])
def test_bundled_detector_finds_nothing_where_nothing_is(bundled, kind):
    picture = np.full((500, 600), 0.0 if kind == "black" else 0.9, np.float32)
    if kind == "nuclei":  # two round solid nuclei, no chromosome
        rows, cols = np.mgrid[:500, :600]
        for r, c in ((150, 150), (300, 400)):
            picture[(rows - r) ** 2 + (cols - c) ** 2 < 60**2] = 0.35
    found = bundled.detect(picture).findings
    assert found.chromosome_count == 0 and found.verdicts == ["too_few"]
    assert found.nuclei_count == (2 if kind == "nuclei" else 0)


def test_bundled_detector_counts_a_real_dapi_spread_it_never_read(bundled):
    """V1801XY, 46,XY by its expert karyotype: slide V18 validates the bundled detector (its
    decoding was chosen on that slide's pictures), so no stage of its training read it. (The
    first 46,XY picture of V18; V1301XY, used elsewhere, is now among its training pictures.)"""
    from metasift.detect import detect_file

    got = detect_file(DATA / "mfish_unseen" / "V1801XY.png", bundled)
    assert abs(got.findings.chromosome_count - 46) <= 3
    assert got.findings.spread_count == 1 and "too_few" not in got.findings.verdicts
    assert 0 < got.count_sd < 10  # some peaks are doubtful: the count says how sure it is


@pytest.mark.xfail(
    strict=True,
    reason="known false call since stage 5: the pile of overlapping chromosomes at V1801XY's "
    "centre (440 overlap pixels in its expert mask) is taken for debris (README, Debris)",
)
def test_bundled_detector_keeps_that_spread(bundled):
    from metasift.detect import detect_file

    got = detect_file(DATA / "mfish_unseen" / "V1801XY.png", bundled)
    assert got.findings.verdicts == []
