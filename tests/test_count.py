"""Chromosome counting and the three criteria, on drawn pictures with known answers, on one
real picture per stain, and on pictures with nothing to count."""

import csv
import shutil

import numpy as np
import pytest

from conftest import DATA
from metasift import synth
from metasift.cli import main
from metasift.count import count_chromosomes, count_file


def _bar(image, r, c, length, angle, width=6.0, dark=0.6):
    """A straight dark chromosome-like bar (soft edges), centred at (r, c)."""
    h, w = image.shape
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = np.cos(angle), np.sin(angle)
    along = (rr - r) * v + (cc - c) * u
    across = -(rr - r) * u + (cc - c) * v
    inside = np.clip(1.5 - np.maximum(np.abs(across) - width / 2, np.abs(along) - length / 2), 0, 1)
    image -= dark * np.minimum(inside, 1)


def _spread(image, centre, n, rng, spacing=38):
    """n separated bars on a jittered grid around ``centre``."""
    side = int(np.ceil(np.sqrt(n)))
    placed = 0
    for i in range(side):
        for j in range(side):
            if placed == n:
                return
            r = centre[0] + (i - side / 2) * spacing + rng.uniform(-4, 4)
            c = centre[1] + (j - side / 2) * spacing + rng.uniform(-4, 4)
            _bar(image, r, c, rng.uniform(14, 30), rng.uniform(0, np.pi))
            placed += 1


def _disc(image, r, c, radius, dark=0.45):
    h, w = image.shape
    rr, cc = np.mgrid[0:h, 0:w]
    image -= dark * np.clip(radius - np.hypot(rr - r, cc - c), 0, 1)


@pytest.fixture
def canvas():
    return np.full((600, 800), 0.9, np.float32)


def test_separated_chromosomes_are_counted_exactly(canvas):
    _spread(canvas, (300, 400), 46, np.random.default_rng(0))
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.chromosome_count == 46
    assert counted.spread_count == 1 and not counted.verdicts


def test_too_few(canvas):
    _spread(canvas, (300, 400), 31, np.random.default_rng(1))
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.chromosome_count == 31 and counted.too_few and "31 chromosomes" in counted.reason


def test_touching_pair_counts_two(canvas):
    _spread(canvas, (300, 300), 44, np.random.default_rng(2))
    _bar(canvas, 300, 450, 30, 0.3)  # at the spread's edge
    _bar(canvas, 300, 450, 30, 1.6)  # a second chromosome crossing the first
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.chromosome_count == 46


def test_objects_alone_far_from_the_spread_are_not_counted(canvas):
    _spread(canvas, (300, 300), 46, np.random.default_rng(0))
    _bar(canvas, 40, 760, 20, 0.5)  # chromosome-sized objects in far corners (a round,
    _bar(canvas, 560, 740, 16, 2.0)  # thick disc is a particle wherever it lies)
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.chromosome_count == 46 and len(counted.strays) == 2
    assert "2 object(s) far from the spread not counted" in counted.reason


def test_round_particles_thicker_than_a_chromosome_are_not_counted(canvas):
    """Particles among the chromosomes, as dark as they are: round and thicker, not counted."""
    _spread(canvas, (300, 400), 46, np.random.default_rng(0))
    for r, c in [(300, 565), (140, 400), (455, 300)]:  # just beyond the spread's edge
        _disc(canvas, r, c, 6.5, dark=0.6)  # 13 pixels across; the bars are 8
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.chromosome_count == 46 and not counted.strays
    assert len(counted.debris_objects) == 3 and "3 round particle(s) not counted" in counted.reason


def test_large_particles_do_not_set_the_chromosome_width(canvas):
    """Six thick particles hold more pixels than all 46 chromosomes together; the width (and
    so the count) must still be the chromosomes'."""
    _spread(canvas, (300, 400), 46, np.random.default_rng(0))
    for r, c in [(50, 50), (50, 750), (550, 50), (550, 750), (300, 40), (300, 760)]:
        _disc(canvas, r, c, 24, dark=0.8)
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert 5 <= counted.chromosome_width <= 9, counted.chromosome_width
    assert counted.chromosome_count == 46


@pytest.mark.parametrize("seed", [2, 3])
def test_halo_under_a_dense_spread_does_not_join_chromosomes(seed):
    """A cell's halo darkens the gaps of a dense, blurred spread: the count must not drop."""
    from scipy import ndimage as ndi

    rr, cc = np.mgrid[0:600, 0:800]
    halo = 1 - 0.4 * np.exp(-((rr - 300) ** 2 + (cc - 400) ** 2) / (2 * 160.0**2))
    counts = []
    for shade in (1.0, halo):
        canvas = np.full((600, 800), 0.9, np.float32)
        _spread(canvas, (300, 400), 46, np.random.default_rng(seed), spacing=26)
        canvas = ndi.gaussian_filter(canvas * shade, 2.5)
        counts.append(count_chromosomes(np.clip(canvas, 0, 1)).chromosome_count)
    plain, on_halo = counts
    assert plain >= 35 and abs(on_halo - plain) <= 2, counts


@pytest.mark.parametrize("seed", [2, 4])
def test_fluorescent_glow_between_chromosomes_is_cut(seed):
    """A fluorescent spread's glow fills the gaps of a dense spread above the threshold; the
    curvature cut (fluorescent=True) separates the chromosomes again."""
    from scipy import ndimage as ndi

    canvas = np.full((600, 800), 0.9, np.float32)
    _spread(canvas, (300, 400), 46, np.random.default_rng(seed), spacing=30)
    canvas = np.clip(ndi.gaussian_filter(canvas, 4.0), 0, 1)
    plain = count_chromosomes(canvas).chromosome_count
    glow = count_chromosomes(canvas, fluorescent=True).chromosome_count
    assert abs(glow - 46) <= 4 and glow - plain >= 3, (plain, glow)


def test_nucleus_beside_the_spread_is_not_debris(canvas):
    _spread(canvas, (300, 260), 42, np.random.default_rng(3))
    _disc(canvas, 300, 640, 90)
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.nuclei_count == 1 and counted.debris_over_chromosomes == 0
    assert counted.chromosome_count == 42 and not counted.verdicts


@pytest.mark.parametrize("length", [30, 14])  # 14: a small chromosome, or one partly hidden
def test_chromosomes_lying_on_a_nucleus_are_counted(canvas, length):
    _spread(canvas, (300, 230), 40, np.random.default_rng(6))
    _disc(canvas, 300, 480, 90, dark=0.3)  # a nucleus at the spread's edge
    _bar(canvas, 270, 440, length, 0.4, dark=0.4)  # two chromosomes on the nucleus
    _bar(canvas, 335, 445, length, 2.0, dark=0.4)
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.nuclei_count == 1 and counted.chromosome_count == 42


def test_particle_over_a_chromosome_is_debris(canvas):
    _bar(canvas, 300, 650, 70, 0.0)
    _spread(canvas, (300, 300), 44, np.random.default_rng(4))
    _disc(canvas, 300, 650, 12, dark=0.8)  # a dark particle on the middle of the bar
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.debris and counted.debris_over_chromosomes >= 1


def test_two_spreads_are_mixed():
    canvas = np.full((600, 1200), 0.9, np.float32)
    rng = np.random.default_rng(5)
    _spread(canvas, (300, 250), 30, rng)
    _spread(canvas, (300, 950), 30, rng)
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.spread_count == 2 and counted.mixed
    assert counted.chromosomes_per_spread == [30, 30]


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_blank_pictures_count_zero(value):
    counted = count_chromosomes(np.full((300, 400), value, np.float32))
    assert counted.chromosome_count == 0 and counted.spread_count == 0 and counted.reason
    assert counted.verdicts == ["too_few"]  # nothing to count is fewer than 40
    assert not count_chromosomes(np.full((30, 40), value), min_chromosomes=0).too_few


def test_only_nuclei_count_zero(canvas):
    _disc(canvas, 200, 200, 90)
    _disc(canvas, 380, 560, 100)
    canvas[500:520, 100:400] -= 0.45  # a long dark scratch: too large for a chromosome, not round
    counted = count_chromosomes(np.clip(canvas, 0, 1))
    assert counted.chromosome_count == 0 and counted.spread_count == 0
    assert counted.verdicts == ["too_few"]
    assert counted.nuclei_count == 2  # the two discs, not the scratch
    assert sorted(round(n.centre[0]) for n in counted.nuclei) == [200, 380]
    assert "2 nuclei" in counted.reason


def test_synthetic_counts_are_close_to_the_truth():
    # tolerance: the synthetic benchmark's mean error is ~3 (benchmarks/count_accuracy.py)
    errors = []
    for seed in range(4):
        image, ann = synth.generate(
            "available", 300 + seed, synth.SynthConfig(height=768, width=960)
        )
        counted = count_chromosomes(image)
        errors.append(counted.chromosome_count - ann["chromosome_count"] - ann["fragment_count"])
    assert np.mean(np.abs(errors)) <= 6


# real pictures: one per stain, with the tolerance measured on them
def test_real_dapi_picture():
    counted = count_file(DATA / "mfish" / "V1301XY.png")  # 46,XY (expert karyotype)
    # counted 53 before fluorescent pictures had the glow cut, 49 with it
    assert abs(counted.chromosome_count - 46) <= 4
    assert counted.spread_count == 1 and not counted.mixed


def test_real_giemsa_picture():
    counted = count_file(DATA / "giemsa" / "1.png")  # 50 boxed chromosomes
    assert abs(counted.chromosome_count - 50) <= 20
    assert counted.nuclei_count >= 5


def test_count_cli_reports_bad_files_and_goes_on(tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "counts.csv"
    code = main(
        [
            "count",
            str(DATA / "mfish"),
            str(tmp_path / "broken.png"),
            "--out",
            str(out),
            "--overlay",
            str(tmp_path / "ov"),
            "--workers",
            "1",
        ]
    )
    assert code == 1
    text = out.read_text()
    assert "broken.png" in text and "V1301XY.png" in text
    assert len(list((tmp_path / "ov").glob("*.png"))) == 2  # the picture and its mask


def test_count_resume_after_interruption_gives_the_same_file(tmp_path):
    for i in range(3):
        shutil.copy(DATA / "mfish" / "V1301XY.png", tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    args = ["count", *sorted(str(p) for p in tmp_path.glob("*.png")), "--workers", "1"]
    assert main([*args, "--out", str(full)]) == 1
    lines = full.read_text().splitlines(keepends=True)
    assert "sha256" in lines[0] and "metasift" in lines[1]  # provenance of every row
    part.write_text("".join(lines[:3]))  # what an interrupted run leaves: the rows done so far
    assert main([*args, "--out", str(part)]) == 2  # never replaced without asking
    assert main([*args, "--out", str(part), "--resume"]) == 1
    assert part.read_bytes() == full.read_bytes()
    # other settings: nothing reused
    assert main([*args, "--out", str(part), "--resume", "--min-chromosomes", "50"]) == 1
    assert all(r["too_few"] == "1" for r in csv.DictReader(part.open()) if not r["error"])


@pytest.mark.parametrize("counter", ["classic", "detector"])
def test_a_picture_the_counter_fails_on_does_not_end_the_batch(tmp_path, monkeypatch, counter):
    from metasift import count, detect

    for name in ("a.png", "b.png"):
        shutil.copy(DATA / "mfish" / "V1301XY.png", tmp_path / name)
    module, name = (count, "count_read") if counter == "classic" else (detect, "detect_read")
    real = getattr(module, name)

    def failing(image, info, **kw):  # a fault injected on one picture, as a bug would be
        if info.path.endswith("b.png"):
            raise FloatingPointError("injected")
        return real(image, info, **kw)

    monkeypatch.setattr(module, name, failing)
    out = tmp_path / "c.csv"
    assert main(["count", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(out),
                 "--workers", "1", "--counter", counter]) == 1  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["error"] == "" and int(rows[0]["chromosome_count"]) > 40
    assert rows[1]["error"].endswith("b.png: counting failed (FloatingPointError: injected)")


@pytest.mark.parametrize(
    "small, full", [((64, 80), (517, 645)), ((1, 5), (7, 40)), ((3, 3), (10, 11))]
)
def test_stretch_matches_linear_zoom(small, full):
    """The coarse background grids come back to full size as ndi.zoom(order=1) brings them."""
    from scipy import ndimage as ndi

    from metasift.count._counter import _full_size

    values = np.random.default_rng(0).random(small).astype(np.float32)
    expected = ndi.zoom(values, (full[0] / small[0], full[1] / small[1]), order=1)
    stretched = _full_size(values, full)
    assert stretched.shape == full and stretched.dtype == np.float32
    np.testing.assert_allclose(stretched, expected[: full[0], : full[1]], atol=1e-5)


def test_inner_distance_matches_the_whole_picture_transform():
    """Object by object, the distance transform is the whole picture's, touching and
    diagonal neighbours and objects cut by the frame included."""
    from scipy import ndimage as ndi

    from metasift.count._counter import _inner_distance

    mask = ndi.gaussian_filter(np.random.default_rng(1).random((120, 150)), 2) > 0.5
    labels, _ = ndi.label(mask)
    np.testing.assert_array_equal(_inner_distance(labels), ndi.distance_transform_edt(mask))


def test_an_overlay_that_cannot_be_written_does_not_cost_the_count(tmp_path):
    blocked = tmp_path / "overlays"
    blocked.write_text("a file where the overlay folder should be")
    out = tmp_path / "c.csv"
    picture = str(DATA / "mfish" / "V1301XY.png")
    assert (
        main(["count", picture, "--out", str(out), "--overlay", str(blocked), "--workers", "1"])
        == 0
    )
    row = next(csv.DictReader(out.open()))
    assert int(row["chromosome_count"]) > 40 and "overlay not written" in row["count_reason"]
