"""The picture with what the counter (or the detector) found drawn on it, for a person to
check: every object in a colour the legend under the picture names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..objects import Findings

CHROMOSOME = (0, 190, 0)
CLUSTER = (200, 0, 200)  # an object counted as several touching chromosomes: "x N"
NUCLEUS = (40, 90, 255)
DEBRIS = (230, 30, 30)  # particles; and any object lying over chromosomes (the debris verdict)
STRAY = (240, 150, 0)  # left uncounted
SPREAD = (230, 200, 0)
CENTROMERE = (0, 220, 230)  # the detector's centromeres
LEGEND = (
    (CHROMOSOME, "chromosome (numbered)"),
    (CENTROMERE, "centromere"),
    (CLUSTER, "touching: counted x N"),
    (NUCLEUS, "nucleus"),
    (DEBRIS, "debris / over chromosomes (thick)"),
    (STRAY, "not counted"),
    (SPREAD, "spread"),
)


def write_overlay(image: np.ndarray, found: Findings, target: Path) -> Path:
    """Write the picture with the chromosomes numbered (the detector's outlined, with their
    centromeres; the counter's boxed, touching ones marked "x N"),
    nuclei, debris, what lies over chromosomes (thick red), objects left uncounted, each
    spread outlined with its count, the verdict on top and a legend below."""
    from PIL import Image, ImageDraw

    h, w = image.shape
    band = 18
    base = Image.new("RGB", (w, h + 2 * band), (0, 0, 0))
    base.paste(Image.fromarray((image * 255).astype(np.uint8)).convert("RGB"), (0, band))
    draw = ImageDraw.Draw(base)

    def rect(box, colour, width=1, ellipse=False):
        r0, c0, r1, c1 = box
        shape = (c0, r0 + band, c1 - 1, r1 - 1 + band)
        (draw.ellipse if ellipse else draw.rectangle)(shape, outline=colour, width=width)

    for k, spread in enumerate(found.spreads, 1):
        if spread.box is not None:
            colour = DEBRIS if found.mixed and len(found.spreads) == 1 else SPREAD
            rect(spread.box, colour, width=2)
            r0, c0 = spread.box[:2]
            draw.text(
                (c0 + 3, r0 + band + 2), f"spread {k}: {spread.chromosome_count}", fill=colour
            )
    n = 0
    for chrom in found.chromosomes:
        n += chrom.pieces
        r0, c0, r1, c1 = chrom.box
        if len(chrom.outline) >= 3:
            draw.polygon([(c, r + band) for r, c in chrom.outline], outline=CHROMOSOME)
        else:
            rect(chrom.box, CLUSTER if chrom.pieces > 1 else CHROMOSOME)
        for r, c in chrom.centromeres:
            draw.ellipse((c - 2, r + band - 2, c + 2, r + band + 2), fill=CENTROMERE)
        draw.text((c1 + 1, r0 + band), str(n), fill=CHROMOSOME)
        if chrom.pieces > 1:
            draw.text((c0, r1 + band), f"x{chrom.pieces}", fill=CLUSTER)
    for chrom in found.strays:
        rect(chrom.box, STRAY)
    for obj in [*found.nuclei, *found.debris_objects]:
        colour = NUCLEUS if obj in found.nuclei else DEBRIS
        if obj.over_chromosomes:  # what the debris verdict rests on
            rect(obj.box, DEBRIS, width=5, ellipse=True)
            draw.text((obj.box[1], obj.box[0] + band - 12), "over chromosomes", fill=DEBRIS)
        else:
            rect(obj.box, colour, width=3, ellipse=True)
    verdict = ", ".join(found.verdicts) or "no rejection criterion met"
    draw.text(
        (4, 3),
        f"{found.chromosome_count} chromosomes, {found.spread_count} spread(s): {verdict}. "
        f"{found.reason}",
        fill=(255, 255, 255),
    )
    x = 4
    marked = any(c.centromeres for c in found.chromosomes)
    for colour, label in [e for e in LEGEND if marked or e[0] != CENTROMERE]:
        draw.rectangle((x, h + band + 4, x + 10, h + band + 14), outline=colour, width=2)
        draw.text((x + 14, h + band + 3), label, fill=(255, 255, 255))
        x += 24 + int(draw.textlength(label))
    with atomic_path(target, ".png") as tmp:
        base.save(tmp)
    return target
