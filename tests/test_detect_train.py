"""Training the detector on tiny synthetic pictures, its model folder, and ONNX vs PyTorch."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory):
    """Two pictures of 256 x 256 with masks, one more to validate on; one epoch of one step,
    then --resume to a second: the model folder."""
    from metasift.cli import main
    from metasift.synth import SynthConfig, write_dataset

    root = tmp_path_factory.mktemp("detector")
    config = SynthConfig(height=256, width=256, style="dca", masks=True, stain="dapi")
    write_dataset(root / "train", 2, seed=1, config=config, workers=1)
    write_dataset(root / "val", 1, seed=2, config=config, workers=1)
    out = root / "model"
    args = ["train-detector", str(root / "train"), str(root / "val"), "--out", str(out)]
    small = ["--steps", "1", "--batch-size", "2", "--crop", "64", "--pretrained", "none"]
    assert main([*args, *small, "--epochs", "1", "--workers", "1"]) == 0
    assert main([*args, *small, "--epochs", "2", "--workers", "1", "--resume"]) == 0
    return out


def test_training_writes_a_detector_folder(tiny_detector):
    from metasift.detect import ARCH, OUTPUTS
    from metasift.models import read_config

    config = read_config(tiny_detector, task="detect")
    assert config["arch"] == ARCH and config["classes"] == list(OUTPUTS)
    for name in ("model.safetensors", "model.onnx", "config.yaml", "curves.png", "checkpoint.pt"):
        assert (tiny_detector / name).is_file()
    with open(tiny_detector / "history.csv", newline="") as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["1", "2"]  # resumed, not redone
    meta = json.loads((tiny_detector / "config.json").read_text())
    assert meta["trained_on"]["train"] == {"real": 0, "synthetic": 2}
    assert meta["width"] == "plain"  # inference measures the width as training did


def test_a_detector_folder_is_not_a_classifier(tiny_detector):
    from metasift.models import ModelFolderError, read_config

    with pytest.raises(ModelFolderError, match="a detect model, not a classify model"):
        read_config(tiny_detector, task="classify")


def test_onnx_and_pytorch_agree(tiny_detector):
    from safetensors.torch import load_file

    from metasift.detect import Detector
    from metasift.detect._net import build_net

    net = build_net(pretrained=False)
    net.load_state_dict(load_file(str(tiny_detector / "model.safetensors")))
    net.eval()
    picture = np.random.default_rng(0).random((70, 100)).astype(np.float32)  # not a multiple
    got = Detector(tiny_detector).probabilities(picture)
    x = np.pad(picture, ((0, 26), (0, 28)), constant_values=1.0)
    with torch.no_grad():
        expected = torch.sigmoid(net(torch.from_numpy(x)[None, None]))[0, :, :70, :100].numpy()
    assert got.shape == (6, 70, 100)
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("kind", ["blank", "black", "nuclei"])
def test_pictures_without_chromosomes_give_zero(tiny_detector, kind):
    from metasift.detect import Detector

    picture = np.full((300, 400), 0.0 if kind == "black" else 0.9, np.float32)
    if kind == "nuclei":
        rows, cols = np.mgrid[:300, :400]
        for r, c in ((80, 100), (200, 300)):
            picture[(rows - r) ** 2 + (cols - c) ** 2 < 40**2] = 0.3
    found = Detector(tiny_detector).detect(picture).findings
    assert found.chromosome_count == 0
    assert found.too_few


def test_settings_are_checked():
    from metasift.train.detector import DetectTrainConfig

    with pytest.raises(ValueError, match="multiple of 32"):
        DetectTrainConfig(crop=100)
    with pytest.raises(ValueError, match="real_share"):
        DetectTrainConfig(real_share=2)
    with pytest.raises(ValueError, match="width must be"):
        DetectTrainConfig(width="middle")
    with pytest.raises(ValueError, match="debris_weight"):
        DetectTrainConfig(debris_weight=0.5)


def test_zoomed_crops_keep_their_targets_consistent():
    """--zoom: a crop taken from a larger or smaller square and resized; the chromosome masks
    follow the picture and every centre inside gets a peak of height 1 at its new place."""
    from metasift.detect._targets import encode, heat_map
    from metasift.train.detector import DetectTrainConfig, crop

    instances = np.zeros((200, 200), np.uint16)
    instances[90:110, 96:104] = 1  # one chromosome, 20 x 8 pixels, centred at (99.5, 99.5)
    classes = (instances > 0).astype(np.uint8)
    targets = encode(instances, classes, 1.0, (200, 200), full=True)
    image = np.where(instances > 0, 0.1, 0.9).astype(np.float32)
    picture = dict(image=image, targets=targets, centres=np.argwhere(targets[0] >= 0.999))
    areas = []
    for seed in range(12):
        x, y = crop(picture, 64, np.random.default_rng(seed), zoom=0.5)
        assert x.shape == (64, 64) and y.shape == (len(targets), 64, 64)
        on = y[1] > 0.5
        if on.any():  # the chromosome in the crop: dark where the mask says, one centre peak
            assert x[on].mean() < x[~on].mean()
            assert (y[0] >= 0.999).sum() == 1
            assert np.array_equal(y[0], heat_map(np.argwhere(y[0] >= 0.999), (64, 64)))
            areas.append(on.sum())
    assert max(areas) > 1.3 * min(areas)  # zoomed in and out
    with pytest.raises(ValueError, match="zoom"):
        DetectTrainConfig(zoom=1.5)
    with pytest.raises(ValueError, match="clean_karyotypes"):
        DetectTrainConfig(clean_karyotypes="false")  # a quoted YAML value


def test_textured_crops_change_chromosomes_not_background_or_targets():
    """--detail: pale and dark patches inside the chromosomes (what a network trained on
    synthetic pictures alone took for gaps between real ones); the background and the targets
    stay as they were."""
    from metasift.detect._targets import encode
    from metasift.train.detector import DetectTrainConfig, _textured, crop

    instances = np.zeros((200, 200), np.uint16)
    instances[60:140, 96:104] = 1  # one long chromosome, 8 pixels wide
    classes = (instances > 0).astype(np.uint8)
    targets = encode(instances, classes, 1.0, (200, 200), full=True)
    image = np.where(instances > 0, 0.2, 1.0).astype(np.float32)
    on = instances > 0
    for seed in range(5):
        x = _textured(image, np.random.default_rng(seed), 8.0)
        assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
        assert np.array_equal(x[:40], image[:40])  # background far from it: untouched
        along = x[60:140, 98:102].mean(1)  # the darkness along the chromosome varies now
        assert along.max() - along.min() > 0.05
        assert x[on].max() < 1.0  # and it is still there
    picture = dict(image=image, targets=targets, centres=np.argwhere(targets[0] >= 0.999))
    plain = crop(picture, 64, np.random.default_rng(3))
    textured = crop(picture, 64, np.random.default_rng(3), detail=1.0)
    assert np.array_equal(plain[1], textured[1])  # the same crop, the same targets
    assert not np.array_equal(plain[0], textured[0])
    with pytest.raises(ValueError, match="detail"):
        DetectTrainConfig(detail=2)


def test_crop_workers_draw_the_same_batches_as_one_process():
    """--workers N: forked processes draw the batches while the network trains; each batch has
    its own random stream, so they are the crops one process draws, in the same order."""
    from metasift.detect._targets import encode
    from metasift.train.detector import CropSampler, DetectTrainConfig, _crop_pool, batches

    rng = np.random.default_rng(0)
    pictures = []
    for real in (False, True):
        instances = np.zeros((120, 120), np.uint16)
        for k in range(1, 5):
            r, c = rng.integers(10, 100, 2)
            instances[r : r + 12, c : c + 5] = k
        targets = encode(instances, (instances > 0).astype(np.uint8), 1.0, (120, 120), full=True)
        image = np.where(instances > 0, 0.2, 0.9).astype(np.float32)
        centres = np.argwhere(targets[0] >= 0.999)
        pictures.append(dict(image=image, targets=targets, centres=centres, real=real, set="s"))
    sampler = CropSampler(pictures, DetectTrainConfig(batch_size=3, crop=64, zoom=0.3))
    keys = [(0, 1, step) for step in range(1, 6)]
    alone = list(batches(sampler, keys))
    with _crop_pool(sampler, 2) as pool:
        if pool is None:
            pytest.skip("no fork here: the batches are drawn in the training's own process")
        pooled = list(batches(sampler, keys, pool, ahead=2))
    assert len(pooled) == len(alone) == 5
    for (xa, ya), (xp, yp) in zip(alone, pooled):
        assert xa.shape == (3, 1, 64, 64) and np.array_equal(xa, xp) and np.array_equal(ya, yp)
    assert not np.array_equal(alone[0][0], alone[1][0])  # each step its own crops


def test_a_clean_karyotype_teaches_that_its_chromosomes_are_no_debris():
    """--clean-karyotypes: on a karyotype-masked real picture, calling a chromosome pixel debris
    or nucleus costs; without it the real picture says nothing about debris. Centromeres stay
    unknown either way (the real sets do not mark them)."""
    from metasift.detect._targets import TARGETS, encode
    from metasift.train.detector import detection_loss

    instances = np.zeros((32, 32), np.uint16)
    instances[8:24, 12:18] = 1
    classes = (instances > 0).astype(np.uint8)
    plain = encode(instances, classes, 1.0, (32, 32), full=False)
    clean = encode(instances, classes, 1.0, (32, 32), full=False, clean=True)
    k3 = TARGETS.index("known3")
    assert not plain[k3].any() and np.array_equal(clean[k3] > 0, instances > 0)
    assert np.array_equal(plain[:k3], clean[:k3])  # centromeres: unknown in both
    logits = torch.full((1, 6, 32, 32), -4.0)
    logits[:, 5] = 4.0  # debris everywhere
    cost = [float(detection_loss(logits, torch.from_numpy(t[None].astype(np.float32)))[0])
            for t in (plain, clean)]  # fmt: skip
    assert cost[1] > cost[0] + 1


def test_debris_pixels_weigh_more_when_asked():
    """--debris-weight: a debris pixel the network misses costs that many times more; the
    other outputs' losses stay as they were."""
    from metasift.detect._targets import TARGETS
    from metasift.train.detector import detection_loss

    targets = torch.zeros(1, len(TARGETS), 32, 32)
    targets[:, 6:] = 1  # every output known (a synthetic picture)
    targets[:, 5, 10:14, 10:14] = 1  # a small particle
    logits = torch.full((1, 6, 32, 32), -4.0)  # nothing anywhere
    plain, _ = detection_loss(logits, targets)
    weighted, _ = detection_loss(logits, targets, debris_weight=5.0)
    assert weighted > plain
    targets[:, 5] = 0  # no debris: the weight changes nothing
    assert detection_loss(logits, targets, 5.0)[0] == detection_loss(logits, targets)[0]


def test_the_detector_counts_for_the_pipeline(tiny_detector, tmp_path):
    import shutil

    from metasift.detect import DetectorSettings, detect_read
    from metasift.io import ImageInfo

    settings = DetectorSettings(model=str(tiny_detector))
    assert settings.identity.startswith("metasift ") and "detector model@" in settings.identity
    other = DetectorSettings(model=str(tiny_detector), min_chromosomes=30)
    assert other.identity != settings.identity  # resume keeps rows of the same settings only
    # the same network decoded otherwise (a retuned folder) makes other rows too
    retuned = tmp_path / "model"
    shutil.copytree(tiny_detector, retuned)
    meta = json.loads((retuned / "config.json").read_text())
    assert DetectorSettings(model=str(retuned)).identity == settings.identity
    meta["decode"]["soft"] = 0.4
    (retuned / "config.json").write_text(json.dumps(meta))
    assert DetectorSettings(model=str(retuned)).identity != settings.identity
    blank = np.full((200, 200), 0.9, np.float32)
    info = ImageInfo("blank.png", "png", "uint8", (200, 200), 1, "dark", False, (0.0, 1.0))
    assert detect_read(blank, info, config=settings).chromosome_count == 0


def test_metasift_count_with_the_detector(tiny_detector, tmp_path):
    from pathlib import Path

    from metasift.cli import main

    picture = Path(__file__).parent / "data" / "mfish" / "V1301XY.png"
    out = tmp_path / "counts.csv"
    argv = ["count", str(picture), "--out", str(out), "--workers", "1"]
    assert main([*argv, "--counter", "detector", "--detector", str(tiny_detector)]) == 0
    with open(out, newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert " detector model@" in row["counter"] and not row["error"]
    assert int(row["chromosome_count"]) >= 0


def test_fine_tuning_starts_from_a_detector(tiny_detector, tmp_path):
    """--init starts from a detector's weights: with a learning rate of almost 0 the fine-tuned
    network is still the one it started from."""
    from safetensors.torch import load_file

    from metasift.train.detector import DetectTrainConfig, train_detector

    config = DetectTrainConfig(epochs=1, steps=1, batch_size=2, crop=64, lr=1e-12,
                               pretrained="none", init=str(tiny_detector), workers=1)  # fmt: skip
    train_folder = tiny_detector.parent / "train"
    meta = train_detector([train_folder], tmp_path / "tuned", config, log=lambda *_: None)
    assert meta["init"] == str(tiny_detector)
    before = load_file(str(tiny_detector / "model.safetensors"))
    after = load_file(str(tmp_path / "tuned" / "model.safetensors"))
    name = next(k for k, v in before.items() if v.is_floating_point() and v.numel() > 100)
    assert torch.allclose(before[name].float(), after[name].float(), atol=1e-4)


def test_a_detector_sees_chromosomes_at_the_width_it_was_trained_at(tiny_detector, tmp_path):
    """--target-width: the pictures are prepared, cropped and their centre peaks drawn at that
    width, the folder records it, and the detector scales, decodes and reports by it."""
    from metasift.detect import Detector, chromosome_width
    from metasift.detect._targets import heat_map
    from metasift.io import read_image
    from metasift.models import read_config
    from metasift.train.detector import DetectTrainConfig, crop, prepare_all, train_detector

    train_folder = tiny_detector.parent / "train"
    config = DetectTrainConfig(epochs=1, steps=1, batch_size=2, crop=64, target_width=4.5,
                               pretrained="none", init=str(tiny_detector), workers=1)  # fmt: skip
    train_detector([train_folder], tmp_path / "narrow", config, log=lambda *_: None)
    assert read_config(tmp_path / "narrow", task="detect")["target_width"] == 4.5
    image, info = read_image(next(train_folder.glob("*/*.png")))
    width = chromosome_width(image, polarity=info.polarity)[0]
    narrow, wide = Detector(tmp_path / "narrow"), Detector(tiny_detector)
    assert narrow.scale(image, polarity=info.polarity) == pytest.approx(4.5 / width)
    assert wide.scale(image, polarity=info.polarity) == pytest.approx(7.0 / width)
    found = narrow.detect(image, polarity=info.polarity).findings
    assert found.chromosome_width == pytest.approx(width, abs=0.01)
    # the prepared picture is 4.5 / 7 as large, its centre peaks as narrow
    items = [(train_folder, 0, False)]
    small, big = (prepare_all(items, jitter=0.0, seed=0, workers=1, target_width=w)[0]
                  for w in (4.5, 7.0))  # fmt: skip
    assert small["image"].shape[1] == pytest.approx(big["image"].shape[1] * 4.5 / 7, abs=1)
    assert small["targets"][0].sum() / big["targets"][0].sum() == pytest.approx(
        (4.5 / 7) ** 2, rel=0.15
    )  # the Gaussians' volume goes with sigma squared
    # zoomed crops draw their centre peaks again, as narrow
    crops = (
        crop(small, 64, np.random.default_rng(s), zoom=0.5, sigma=4.5 / 4)[1] for s in range(20)
    )
    y = next(y for y in crops if (y[0] >= 0.999).any())
    peaks = np.argwhere(y[0] >= 0.999)
    assert np.array_equal(y[0], heat_map(peaks, (64, 64), 4.5 / 4))
    assert not np.array_equal(y[0], heat_map(peaks, (64, 64)))
    with pytest.raises(ValueError, match="target_width"):
        DetectTrainConfig(target_width=1.0)


def test_the_detector_decodes_at_its_own_width(tiny_detector, tmp_path, monkeypatch):
    """A folder whose config says target_width 4.5 is decoded and reported at 4.5; a width
    that is no number in range is refused, naming the folder."""
    import shutil

    from metasift.detect import Detector, _infer
    from metasift.models import write_json

    folder = tmp_path / "narrow"
    shutil.copytree(tiny_detector, folder)
    meta = json.loads((folder / "config.json").read_text())
    write_json(folder / "config.json", {**meta, "target_width": 4.5})
    seen = []
    real = _infer.decode
    monkeypatch.setattr(
        _infer, "decode", lambda *a, **kw: seen.append(kw["width"]) or real(*a, **kw)
    )
    Detector(folder).detect(np.ones((120, 160), np.float32))
    assert seen == [4.5]
    for bad in ("wide", 20):
        write_json(folder / "config.json", {**meta, "target_width": bad})
        with pytest.raises(ValueError, match=f"{folder.name}: target_width"):
            Detector(folder)


def test_decoding_counts_areas_in_the_model_s_chromosome_widths():
    """The orphan rule's area is in squared chromosome widths: 2 x 49 pixels at width 7, 2 x
    16 at width 4, so a 60-pixel piece no centre reached is a chromosome only at width 4."""
    from metasift.detect import decode

    probs = np.zeros((6, 40, 40), np.float32)
    probs[1, 10:16, 10:20] = 0.9  # 60 foreground pixels, no centre
    assert decode(probs).instances.max() == 0
    assert decode(probs, width=4.0).instances.max() == 1


def test_fine_tuning_needs_a_detector_folder(tiny_detector, tmp_path):
    from metasift.models import ModelFolderError
    from metasift.train.detector import _init_weights

    with pytest.raises(ModelFolderError):
        _init_weights(str(tmp_path))


def test_a_picture_without_a_slide_is_held_out_by_its_image(tmp_path):
    """A real set without a slide column (giemsa-dev): --test-slides names the images."""
    import shutil
    from pathlib import Path

    from metasift.train.detector import DetectTrainConfig, list_pictures

    data = Path(__file__).parent / "data" / "giemsa"
    for name in ("a", "b"):
        shutil.copyfile(data / "1.png", tmp_path / f"{name}.png")
        shutil.copyfile(data / "1.txt", tmp_path / f"{name}.txt")
    (tmp_path / "manifest.csv").write_text(
        "image,chromosome_boxes\na.png,a.txt\nb.png,b.txt\n", encoding="utf-8"
    )
    split = list_pictures([tmp_path], DetectTrainConfig(test_slides="b.png"))
    assert split == {"train": [(str(tmp_path), 0, True)], "val": []}
    split = list_pictures([tmp_path], DetectTrainConfig(val_slides="a.png"))
    assert split == {"train": [(str(tmp_path), 1, True)], "val": [(str(tmp_path), 0, True)]}


def test_averaged_weights_resume_and_keep_the_decoding(tiny_detector, tmp_path):
    """--ema: the saved model is the average, a resumed run ends where an unbroken one does;
    without validation pictures a fine-tuned detector decodes as the one it started from."""
    from safetensors.torch import load_file

    from metasift.train.detector import DetectTrainConfig, train_detector

    def run(out, epochs, resume=False):
        config = DetectTrainConfig(epochs=epochs, steps=2, batch_size=2, crop=64, lr=1e-3,
                                   ema=0.9, init=str(tiny_detector), workers=1)  # fmt: skip
        return train_detector([tiny_detector.parent / "train"], out, config, resume=resume,
                              log=lambda *_: None)  # fmt: skip

    whole = run(tmp_path / "whole", 2)
    run(tmp_path / "broken", 1)
    run(tmp_path / "broken", 2, resume=True)
    a = load_file(str(tmp_path / "whole" / "model.safetensors"))
    b = load_file(str(tmp_path / "broken" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    name = next(k for k, v in a.items() if v.is_floating_point() and v.numel() > 100)
    assert not torch.equal(saved["model"][name], a[name])  # the average, not the last step
    started = json.loads((tiny_detector / "config.json").read_text())["decode"]
    assert whole["decode"] == started
    assert json.loads((tmp_path / "whole" / "config.json").read_text())["decode"] == started


def test_a_checkpoint_from_before_a_new_setting_resumes(tiny_detector, tmp_path):
    """A checkpoint written before a setting existed (here ``ema``) was trained with that
    setting's default: --resume goes on from it."""
    import shutil

    from metasift.cli import main

    out = tmp_path / "model"
    shutil.copytree(tiny_detector, out)
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    del saved["config"]["ema"]
    torch.save(saved, out / "checkpoint.pt")
    train = tiny_detector.parent / "train"
    args = ["train-detector", str(train), "--out", str(out), "--resume", "--workers", "1"]
    small = ["--steps", "1", "--batch-size", "2", "--crop", "64", "--pretrained", "none"]
    assert main([*args, *small, "--epochs", "3"]) == 0
    with open(out / "history.csv", newline="") as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["1", "2", "3"]


def test_tuning_keeps_the_decoding_it_does_not_search(tiny_detector, tmp_path):
    """Fine-tuned with validation pictures, a detector's decoding is searched for its peak,
    orphan area and window; the rest (here debris_level) stays that of the one it started from."""
    import shutil

    from metasift.train.detector import DetectTrainConfig, train_detector

    start = tmp_path / "start"
    shutil.copytree(tiny_detector, start)
    meta = json.loads((start / "config.json").read_text())
    meta["decode"]["debris_level"] = 0.35
    (start / "config.json").write_text(json.dumps(meta))
    config = DetectTrainConfig(epochs=1, steps=1, batch_size=2, crop=64, init=str(start),
                               workers=1)  # fmt: skip
    data = [tiny_detector.parent / "train", tiny_detector.parent / "val"]
    tuned = train_detector(data, tmp_path / "tuned", config, log=lambda *_: None)
    assert tuned["decode"]["debris_level"] == 0.35


def test_decoding_is_tuned_again_on_the_same_validation_pictures(tiny_detector, tmp_path):
    """retune_decoding searches the decodings again (now also the picture's own threshold) on
    the validation pictures its training drew, writes them into config.json and leaves what
    it does not search."""
    import shutil

    from metasift.detect import Detector
    from metasift.train.detector import retune_decoding

    folder = tmp_path / "model"
    shutil.copytree(tiny_detector, folder)
    meta = json.loads((folder / "config.json").read_text())
    meta["decode"]["debris_level"] = 0.35
    (folder / "config.json").write_text(json.dumps(meta))
    data = [tiny_detector.parent / "train", tiny_detector.parent / "val"]
    lines = []
    first = retune_decoding(folder, data, log=lines.append)
    assert "on the 1 synthetic validation pictures" in lines[0]
    assert json.loads((folder / "config.json").read_text())["decode"] == first
    assert first["debris_level"] == 0.35 and Detector(folder).decode_config.soft == first["soft"]
    with pytest.raises(ValueError, match="no validation pictures"):
        retune_decoding(folder, data[:1])


def test_pictures_with_chromatids_apart_are_seen_smaller(tmp_path):
    """tune_apart_scale: on a real Giemsa picture whose sister chromatids lie apart (50 boxed
    chromosomes; the bundled detector counted it 55 at its measured width), the factor that
    counts it best is chosen and written; the detector then looks at such pictures that much
    smaller, and at others (and at fluorescent ones) as measured."""
    import shutil

    from metasift.detect import Detector, chromosome_width, default_detector_dir, scale_for
    from metasift.io import read_image
    from metasift.train.detector import (
        APART_SCALES,
        DetectTrainConfig,
        list_pictures,
        tune_apart_scale,
    )

    data = Path(__file__).parent / "data" / "giemsa"
    real = tmp_path / "giemsa"
    (real / "images").mkdir(parents=True)
    (real / "boxes").mkdir()
    shutil.copy(data / "1.png", real / "images" / "1.png")
    shutil.copy(data / "1.txt", real / "boxes" / "1.txt")
    (real / "manifest.csv").write_text("image,chromosome_boxes\nimages/1.png,boxes/1.txt\n")
    folder = tmp_path / "detector"
    shutil.copytree(default_detector_dir(), folder)
    items = list_pictures([real], DetectTrainConfig())["train"]
    lines = []
    best = tune_apart_scale(folder, items, "bodies", log=lines.append)
    assert best in APART_SCALES and best < 1 and "on the 1 real training pictures" in lines[0]
    assert json.loads((folder / "config.json").read_text())["apart_scale"] == best
    image, info = read_image(real / "images" / "1.png")
    width, apart = chromosome_width(image, "bodies", polarity=info.polarity)
    assert apart and Detector(folder).scale(image) == pytest.approx(
        scale_for(image.shape, width) * best
    )
    plain = scale_for(image.shape, chromosome_width(image, "plain")[0])
    assert Detector(folder).scale(image, polarity="bright") == pytest.approx(plain)
    assert tune_apart_scale(folder, [(i[0], i[1], False) for i in items], "bodies") == 1.0


def test_the_validation_pictures_counted_are_drawn_with_the_seed():
    """At most max_val validation pictures are counted, the same ones for the same seed (so
    retune_decoding searches on the pictures the training chose on), in their order."""
    from metasift.train.detector import DetectTrainConfig, validation_items

    split = {"val": [(f"set{i % 2}", i, True) for i in range(30)]}
    few = validation_items(split, DetectTrainConfig(max_val=24, seed=3))
    assert len(few) == 24 and few == sorted(few, key=lambda item: item[1])
    assert few == validation_items(split, DetectTrainConfig(max_val=24, seed=3))
    assert few != validation_items(split, DetectTrainConfig(max_val=24, seed=4))
    assert validation_items(split, DetectTrainConfig(max_val=40)) == split["val"]
