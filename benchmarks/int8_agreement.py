"""Would an int8 model keep the fp32 model's decisions? (issue 4: int8 is allowed only if it does)

Statically quantises a model folder's model.onnx with ONNX Runtime (QDQ, per-channel int8
weights, uint8 activations, MinMax calibration on pictures from CALIB), then prints, for the
pictures of HELDOUT: model-only images/s of fp32 and int8 (2 threads, batch 16), how many
keep/reject decisions and top-1 classes agree, and both accuracies when HELDOUT has labels.

    python benchmarks/int8_agreement.py [--model DIR] --calib DIR --heldout DIR [--n-calib 400]

Calibrate on training pictures, never on the held-out ones. metasift ships no int8 model: on
the bundled model it changed 13 of 1,000 keep/reject decisions (model alone 2.35x faster).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from metasift.data import discover, normalise
from metasift.io import read_image
from metasift.models import default_model_dir, read_config, read_threshold


def inputs(folder: Path, n: int, config) -> tuple[np.ndarray, list]:
    samples = [s for split in discover(folder).splits.values() for s in split]
    samples = sorted(samples, key=lambda s: str(s.path))
    if n:  # an even spread over every class
        samples = samples[:: max(1, len(samples) // n)][:n]
    crop = config.get("crop", "none") == "spread"  # the model's own view of each picture
    small = np.stack([read_image(s.path, size=config["input_size"], crop=crop)[0] for s in samples])
    return normalise(small, config["mean"], config["std"]), samples


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def probs(sess, x: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    logits = np.concatenate(
        [sess.run(None, {name: x[i : i + 16]})[0] for i in range(0, len(x), 16)]
    )
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def speed(sess, x: np.ndarray) -> float:
    name, batch = sess.get_inputs()[0].name, x[:16]
    sess.run(None, {name: batch})
    start = time.perf_counter()
    for _ in range(10):
        sess.run(None, {name: batch})
    return 10 * len(batch) / (time.perf_counter() - start)


def quantise(model: Path, calib: np.ndarray, target: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calib[i : i + 16] for i in range(0, len(calib), 16))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    prepared = target.with_name("prepared.onnx")
    quant_pre_process(str(model), str(prepared))
    quantize_static(
        str(prepared),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=default_model_dir())
    parser.add_argument("--calib", type=Path, required=True, help="training pictures")
    parser.add_argument("--heldout", type=Path, required=True)
    parser.add_argument("--n-calib", type=int, default=400)
    args = parser.parse_args()
    config, threshold = read_config(args.model), read_threshold(args.model)
    classes = config["classes"]
    calib, _ = inputs(args.calib, args.n_calib, config)
    test, samples = inputs(args.heldout, 0, config)
    with tempfile.TemporaryDirectory() as tmp:
        int8 = Path(tmp) / "model.int8.onnx"
        quantise(args.model / "model.onnx", calib, int8)
        fp32_sess, int8_sess = session(args.model / "model.onnx"), session(int8)
        p32, p8 = probs(fp32_sess, test), probs(int8_sess, test)
        v32, v8 = speed(fp32_sess, test), speed(int8_sess, test)
    keep = classes.index(config["keep_class"])
    d32, d8 = (1 - p32[:, keep]) >= threshold, (1 - p8[:, keep]) >= threshold
    print(f"{args.model} on {len(test)} held-out pictures from {args.heldout}")
    print(f"  model only, 2 threads, batch 16: fp32 {v32:.1f} images/s, int8 {v8:.1f} images/s")
    print(
        f"  same keep/reject decision: {int((d32 == d8).sum())} of {len(test)}; same top-1 class: "
        f"{int((p32.argmax(1) == p8.argmax(1)).sum())}; largest probability change "
        f"{float(np.abs(p32 - p8).max()):.3f}"
    )
    labels = [s.label for s in samples]
    if all(label in classes for label in labels):
        truth = np.array([label != config["keep_class"] for label in labels])
        print(
            f"  keep/reject accuracy: fp32 {np.mean(d32 == truth):.4f}, int8 {np.mean(d8 == truth):.4f}"
        )


if __name__ == "__main__":
    main()
