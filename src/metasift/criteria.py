"""The rejection criteria of the reference paper (Jang et al.), in one place.

A metaphase picture is usable for dicentric scoring unless (a) two or more spreads are mixed,
(b) particles or nuclei lie over chromosomes, or (c) it holds fewer than 40 chromosomes. The
synthesiser labels its pictures by these rules, the counter and the detector decide their
verdicts by them, and classify compares the CNN's decision with them.
"""

from __future__ import annotations

from collections.abc import Sequence

KEEP = "available"  # the class name of a usable picture, as the reference paper calls it
REASONS = ("mixed", "debris", "too_few")  # the rejection criteria (a), (b), (c), in this order
CLASSES = (KEEP, *REASONS)  # the four classes a synthetic picture is drawn as
KEEP_CLASSES = ("keep", "available")  # class names that mean "usable for scoring"
MIN_CHROMOSOMES = 40  # criterion (c) of the reference paper
MAX_ONE_CELL = 60  # more chromosomes than a (near-)diploid cell holds: two spreads run together


def verdicts(
    chromosomes_per_spread: Sequence[int],
    objects_over_chromosomes: int,
    *,
    min_chromosomes: int = MIN_CHROMOSOMES,
) -> list[str]:
    """The criteria a picture meets, in the order of ``REASONS``.

    ``mixed``: two or more spreads, or more chromosomes than one cell holds; ``debris``: a
    particle or nucleus over chromosomes; ``too_few``: one spread (or none) with fewer than
    ``min_chromosomes`` (0 turns the criterion off).
    """
    total = sum(chromosomes_per_spread)
    mixed = len(chromosomes_per_spread) >= 2 or total > MAX_ONE_CELL
    found = {
        "mixed": mixed,
        "debris": objects_over_chromosomes > 0,
        "too_few": not mixed and total < min_chromosomes,
    }
    return [name for name in REASONS if found[name]]


def in_words(
    chromosomes_per_spread: Sequence[int],
    objects_over_chromosomes: int,
    found: Sequence[str],
    *,
    min_chromosomes: int = MIN_CHROMOSOMES,
    count: str | None = None,
) -> str:
    """The verdicts ``found`` and what they rest on, in words (a results row's count_reason).
    ``count``: the chromosome count as it should read (e.g. with its uncertainty)."""
    n = count or str(sum(chromosomes_per_spread))
    said = []
    if len(chromosomes_per_spread) >= 2:
        each = ", ".join(map(str, chromosomes_per_spread))
        said.append(f"{len(chromosomes_per_spread)} separate spreads ({each} chromosomes)")
    elif "mixed" in found:
        said.append(f"{n} chromosomes: more than one cell")
    if objects_over_chromosomes:
        said.append(f"{objects_over_chromosomes} particle(s) or nuclei over chromosomes")
    if "too_few" in found:
        said.append(f"{n} chromosomes (< {min_chromosomes})")
    return "; ".join(said) or f"{n} chromosomes in one spread"


def agreement(
    decision: str, reasons: str, count_verdicts: Sequence[str] | None, count_reason: str
) -> str:
    """Whether the CNN's decision and the measured evidence (the count's verdicts) agree, in
    words: ``agree``, ``both reject, for different reasons (...)``, ``disagree: ...``, or
    ``no count`` when the count failed (``count_verdicts`` None: nothing to compare).

    Both rejecting agrees when they share a reason, or when the CNN names none (a keep/reject
    model cannot say why)."""
    if count_verdicts is None:
        return "no count"
    found = [v for v in count_verdicts if v]
    cnn = [r for r in reasons.split(";") if r]
    if decision != "reject" and not found:
        return "agree"
    if decision == "reject" and found:
        if not cnn or set(cnn) & set(found):
            return "agree"
        return (
            f"both reject, for different reasons (CNN: {', '.join(cnn)}; "
            f"count: {', '.join(found)}: {count_reason})"
        )
    if found:
        return f"disagree: CNN keeps, count finds {', '.join(found)} ({count_reason})"
    why = f" ({', '.join(cnn)})" if cnn else ""
    return f"disagree: CNN rejects{why}, count finds no problem ({count_reason})"


def spreads(centres, half: float) -> list:
    """The chromosomes (indices into ``centres``, (row, column) in pixels where a chromosome
    is ``2 * half`` wide) of each spread, largest first, as the counter and the detector group
    them. Single linkage cut at three times the typical distance between neighbouring
    chromosomes and at least 20 half-widths; groups too small to be a spread (a few stray
    chromosomes) join the nearest spread."""
    import numpy as np

    everything = [np.arange(len(centres))]
    if len(centres) < 2:
        return everything
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial import cKDTree

    nn = cKDTree(centres).query(centres, k=2)[0][:, 1]
    gap = max(3.0 * float(np.median(nn)), 20 * half)
    labels = fcluster(linkage(centres, "single"), gap, criterion="distance")
    groups = {g: np.flatnonzero(labels == g) for g in np.unique(labels)}
    big = [g for g, idx in groups.items() if len(idx) >= max(8, 0.2 * len(centres))]
    if not big:
        return everything
    members = {g: [groups[g]] for g in big}
    middles = {g: centres[groups[g]].mean(0) for g in big}
    for g, idx in groups.items():
        if g not in members:
            home = min(big, key=lambda b: np.linalg.norm(centres[idx].mean(0) - middles[b]))
            members[home].append(idx)
    grouped = [np.sort(np.concatenate(parts)) for parts in members.values()]
    return sorted(grouped, key=len, reverse=True)
