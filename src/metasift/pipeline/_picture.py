"""One picture through the steps that need no batch: its file identity, reading it, counting
it, drawing the overlay; and the batched step, classification, over the pictures so prepared.
These run in worker processes or threads, locally or on a Dask cluster."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .schema import Classification, Result


@dataclass(frozen=True)
class Plan:
    """What to do with each picture (sent to every worker, so small and picklable)."""

    steps: tuple[str, ...]  # ("classify",), ("count",) or both
    size: int = 0  # the classifier's input size
    crop: bool = False  # the classifier looks at the square around the chromosomes
    count_config: object = None  # a CountConfig, or a detect.DetectorSettings, when counting
    overlay_dir: str | None = None  # draw the count's findings here


def file_identity(path: Path) -> tuple:
    """(size, modification time in ns, SHA-256) of a file, or blanks when it cannot be read."""
    try:
        st = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return st.st_size, st.st_mtime_ns, digest
    except OSError:
        return "", "", ""


def overlay_name(path) -> str:
    """An overlay's file name: the picture's stem and a short hash of its full path, so that
    pictures of the same name in different folders do not collide."""
    digest = hashlib.sha1(os.path.abspath(path).encode(errors="surrogateescape")).hexdigest()
    return f"{Path(path).stem}_{digest[:6]}.png"


def heatmap_name(path) -> str:
    """A heat map's file name: the overlay's, marked, so both may share a folder."""
    return overlay_name(path).removesuffix(".png") + "_heatmap.png"


def prepare(path: Path, plan: Plan) -> tuple[Result, np.ndarray | None]:
    """Read, count and draw one picture; with it, the classifier's input (small grey picture)
    when classifying. Never raises for a bad picture: the result says what went wrong."""
    from .. import count
    from ..crop import view
    from ..io import ImageReadError, read_image

    result = Result(Path(path), identity=file_identity(Path(path)), steps=plan.steps)
    counting = "count" in plan.steps
    if counting:
        result.counter = plan.count_config.identity
    try:
        # counting needs the full picture; classifying alone takes the faster resized read
        full = counting or "classify" not in plan.steps
        image, info = read_image(path, size=None if full else plan.size, crop=plan.crop)
    except ImageReadError as err:
        result.error = str(err)
        return result, None
    result.width, result.height = info.width, info.height
    array = None
    if "classify" in plan.steps:
        array = view(image, plan.size, plan.crop) if full else image
    if counting:
        try:  # looked up on the module, so a fault injected there is met here too
            if getattr(plan.count_config, "counter", "classic") == "detector":
                from ..detect import detect_read

                result.findings = detect_read(image, info, config=plan.count_config)
            else:
                result.findings = count.count_read(image, info, config=plan.count_config)
        except Exception as err:  # a picture the counter cannot handle must not end the batch
            failed = f"counting failed ({type(err).__name__}: {err})"
            if "classify" in plan.steps:  # the classification stands; the row says why
                result.count_error = failed
            else:
                result.error = f"{path}: {failed}"
        if plan.overlay_dir and result.findings is not None:
            target = Path(plan.overlay_dir) / overlay_name(path)
            try:
                count.write_overlay(image, result.findings, target)
            except OSError as err:  # a full disk must not cost the count: the row says so
                result.findings.reason += f" (overlay not written: {err})"
    return result, array


def classify_prepared(
    prepared: list[tuple[Result, np.ndarray | None]], classifier, threshold: float | None = None
) -> list[Result]:
    """Classify a batch of prepared pictures in one call of the model, deciding at
    ``threshold`` (default: the classifier's)."""
    from ..classify import decide
    from ..data import normalise

    arrays = [a for r, a in prepared if a is not None]
    # workers send the small grey picture; the 3-channel input is made here
    probs = iter(
        classifier.probs(normalise(np.stack(arrays), classifier.mean, classifier.std))
        if arrays
        else []
    )
    results = []
    for result, array in prepared:
        if array is not None:
            cut = classifier.threshold if threshold is None else threshold
            d = decide(next(probs), classifier.classes, cut)
            result.classification = Classification(
                decision=d["decision"],
                p_reject=d["p_reject"],
                probabilities={c: d[k] for c in classifier.classes[1:] if (k := f"p_{c}") in d},
                reasons=[r for r in d["reasons"].split(";") if r],
            )
        result.model = classifier.name
        results.append(result)  # no input: it could not be read, and says why
    return results
