"""How good a model folder is on labelled pictures: the figures a lab needs before trusting it.

Multi-class figures when the pictures carry the model's classes; always the binary keep/reject
figures, since that decision is what the reference paper reports (accuracy 0.995).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_text
from .data import DataSet, discover, prepare


def confusion(y_true, y_pred, n: int) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def per_class(matrix: np.ndarray, classes) -> dict:
    out = {}
    for i, name in enumerate(classes):
        tp = matrix[i, i]
        precision = tp / matrix[:, i].sum() if matrix[:, i].sum() else float("nan")
        recall = tp / matrix[i].sum() if matrix[i].sum() else float("nan")
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision + recall > 0
            else float("nan")
        )
        out[name] = dict(
            precision=float(precision),
            recall=float(recall),
            f1=float(f1),
            support=int(matrix[i].sum()),
        )
    return out


def roc_auc(scores, positive) -> float:
    """Area under the ROC curve: the chance that a random positive outranks a random negative."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    allv = np.concatenate([pos, neg])
    for v in np.unique(allv):  # ties share their mean rank
        tie = allv == v
        ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def metrics(probs: np.ndarray, targets, classes, threshold: float, model_classes) -> dict:
    """All figures from model probabilities and true labels (``classes`` of the data).

    ``targets`` index ``classes``; the data's first class means keep. When the data's classes
    are the model's, the multi-class figures are computed too.
    """
    probs, targets = np.asarray(probs, float), np.asarray(targets)
    p_reject = 1 - probs[:, 0]
    is_reject = targets != 0
    reject_pred = p_reject >= threshold
    tp, fn = int((reject_pred & is_reject).sum()), int((~reject_pred & is_reject).sum())
    tn, fp = int((~reject_pred & ~is_reject).sum()), int((reject_pred & ~is_reject).sum())
    p_true_binary = np.where(is_reject, p_reject, 1 - p_reject)
    binary = dict(
        threshold=threshold,
        accuracy=(tp + tn) / len(targets),
        loss=float(-np.mean(np.log(np.clip(p_true_binary, 1e-12, 1)))),
        sensitivity=tp / (tp + fn) if tp + fn else float("nan"),
        specificity=tn / (tn + fp) if tn + fp else float("nan"),
        roc_auc=roc_auc(p_reject, is_reject),
        confusion={"keep->keep": tn, "keep->reject": fp, "reject->keep": fn, "reject->reject": tp},
    )
    result = dict(n=len(targets), binary=binary)
    if list(classes) == list(model_classes) and len(classes) > 2:
        pred = probs.argmax(1)
        matrix = confusion(targets, pred, len(classes))
        recalls = [v["recall"] for v in per_class(matrix, classes).values() if v["support"]]
        result.update(
            loss=float(
                -np.mean(np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-12, 1)))
            ),
            accuracy=float(np.mean(pred == targets)),
            balanced_accuracy=float(np.mean(recalls)),
            per_class=per_class(matrix, classes),
            confusion_matrix=matrix.tolist(),
        )
    else:
        matrix = np.array([[tn, fp], [fn, tp]])
        result.update(
            loss=binary["loss"],
            accuracy=binary["accuracy"],
            balanced_accuracy=float(np.nanmean([binary["sensitivity"], binary["specificity"]])),
            per_class=per_class(matrix, ["keep", "reject"]),
            confusion_matrix=matrix.tolist(),
        )
    result["confusion_labels"] = (
        list(classes) if len(result["confusion_matrix"]) == len(classes) else ["keep", "reject"]
    )
    return result


MIN_PER_CLASS = 10  # fewer pictures of a class than this measure nothing about it


def caveats(binary: dict, n_keep: int, n_reject: int, where: str) -> list[str]:
    """In plain words, why keep/reject figures measured ``where`` (e.g. "the test split") may
    mean nothing: a class missing or too rare, a sensitivity or specificity of 0, a model no
    better than always giving the same answer, a ROC AUC near 0.5."""
    said = []
    for n, name, about in ((n_keep, "keep", "specificity"), (n_reject, "reject", "sensitivity")):
        if n == 0:
            said.append(f"{where} holds no {name} pictures: its {about} cannot be measured")
        elif n < MIN_PER_CLASS:
            said.append(f"{where} holds only {n} {name} picture(s): too few to measure its {about}")
    if n_reject and binary.get("sensitivity") == 0:
        said.append(f"sensitivity 0 on {where}: not one of the {n_reject} bad pictures is caught")
    if n_keep and binary.get("specificity") == 0:
        said.append(f"specificity 0 on {where}: every usable picture is rejected")
    if n_keep and n_reject:
        majority = max(n_keep, n_reject) / (n_keep + n_reject)
        answer = "keep" if n_keep >= n_reject else "reject"
        if binary.get("accuracy", 1) <= majority:
            said.append(
                f"keep/reject accuracy {binary['accuracy']:.3f} on {where} is no better than "
                f"always answering {answer} ({majority:.3f})"
            )
        auc = binary.get("roc_auc", float("nan"))
        if abs(auc - 0.5) < 0.1:
            said.append(f"ROC AUC {auc:.2f} on {where} is near 0.5: no better than chance")
    return said


def evaluation_set(data: str | os.PathLike, seed: int = 0) -> tuple[DataSet, list]:
    """The test split of ``data`` when it has one (train/val/test folders or a split column),
    else every labelled picture in it."""
    ds = discover(data, seed=seed, ratios=(0.0, 0.0, 1.0))
    samples = ds.splits["test"] or [s for split in ds.splits.values() for s in split]
    return ds, samples


def evaluate(
    model_dir, data, *, backend: str = "onnx", json_path=None, batch_size: int = 16, log=print
) -> dict:
    from .classify import Classifier

    clf = Classifier(model_dir, backend=backend)
    ds, samples = evaluation_set(data)
    model_classes = clf.classes
    if set(ds.classes) == set(model_classes):  # the model's own classes: multi-class figures
        classes = tuple(model_classes)
    else:  # otherwise only keep (the data's keep class) against reject (any other label)
        classes = (ds.keep_class, "reject")
    targets = np.array([classes.index(s.label) if s.label in classes else 1 for s in samples])
    probs = []
    for i in range(0, len(samples), batch_size):
        batch = np.stack(
            [
                prepare(s.path, clf.size, clf.mean, clf.std, clf.crop)
                for s in samples[i : i + batch_size]
            ]
        )
        probs.append(clf.probs(batch))
    probs = np.concatenate(probs)
    result = metrics(probs, targets, classes, clf.threshold, model_classes)
    pred_reject = 1 - probs[:, 0] >= clf.threshold
    # paths as the data names them (relative to its folder), so the report reads the same
    # wherever the data lies
    base = Path(data) if Path(data).is_dir() else Path(data).parent
    result["misclassified"] = [
        dict(
            path=_relative(s.path, base),
            label=s.label,
            predicted=model_classes[int(p.argmax())],
            p_reject=round(float(1 - p[0]), 4),
        )
        for s, p, r, t in zip(samples, probs, pred_reject, targets)
        if r != (t != 0) or (classes == tuple(model_classes) and int(p.argmax()) != t)
    ]
    is_reject = np.asarray(targets) != 0
    result["warnings"] = caveats(
        result["binary"], int((~is_reject).sum()), int(is_reject.sum()), "this data"
    )
    result.update(model=str(clf.folder), model_hash=clf.hash, data=str(data), backend=backend)
    log(report(result))
    if json_path:
        json_path = Path(json_path)
        write_text(json_path, json.dumps(result, indent=2) + "\n")
        plot_confusion(result, json_path.with_suffix(".png"))
    return result


def _relative(path: Path, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:  # a manifest may name pictures outside its folder
        return str(path)


def report(r: dict) -> str:
    b = r["binary"]
    lines = [
        f"{r['n']} pictures from {r['data']}, model {r['model']} ({r['backend']})",
        f"  accuracy {r['accuracy']:.4f}  balanced accuracy {r['balanced_accuracy']:.4f}  loss {r['loss']:.4g}",
        f"  keep/reject at threshold {b['threshold']:.3f}: accuracy {b['accuracy']:.4f}, "
        f"sensitivity {b['sensitivity']:.4f}, specificity {b['specificity']:.4f}, "
        f"ROC AUC {b['roc_auc']:.4f}, loss {b['loss']:.4g}",
        "  class         precision  recall     f1  support",
    ]
    for name, v in r["per_class"].items():
        lines.append(
            f"  {name:12s} {v['precision']:9.4f} {v['recall']:7.4f} {v['f1']:6.4f} {v['support']:8d}"
        )
    labels = r["confusion_labels"]
    lines.append("  confusion (rows: true, columns: predicted): " + " ".join(labels))
    for name, row in zip(labels, r["confusion_matrix"]):
        lines.append(f"    {name:12s} " + " ".join(f"{v:6d}" for v in row))
    lines += [f"  warning: {w}" for w in r.get("warnings", [])]
    lines.append(f"  misclassified: {len(r['misclassified'])}")
    for m in r["misclassified"][:10]:
        lines.append(
            f"    {m['path']}  true {m['label']}, predicted {m['predicted']}, p_reject {m['p_reject']}"
        )
    return "\n".join(lines)


def plot_confusion(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix, labels = np.array(r["confusion_matrix"]), r["confusion_labels"]
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(v),
            ha="center",
            va="center",
            color="white" if v > matrix.max() / 2 else "black",
        )
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {r['accuracy']:.4f} (n={r['n']})")
    fig.tight_layout()
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
