"""Synthetic DCA pictures with full ground truth.

A picture is built the way a microscope forms it. Every object adds optical density (OD) to a
map: chromosomes (two sister chromatids with a centromere constriction and faint bands),
interphase nuclei, debris, fibres and a faint cytoplasm halo. Bright-field Giemsa is then
``illumination * exp(-OD)``; fluorescence (DAPI) is ``background + OD``; both are blurred and
get camera noise. Sizes come from the human karyotype and scale with a per-picture
magnification and condensation, so short compact and long prometaphase-like spreads occur.

Classes follow the three rejection criteria of the reference paper (Jang et al.), as
``metasift.criteria`` states them: ``available``, ``mixed``, ``debris``, ``too_few``. Hard cases
sit on each boundary (exactly 40 vs 39 chromosomes, a nucleus touching a spread without
covering it, a single small particle on one chromosome, spreads far apart). All coordinates in
annotations are (row, column) in pixels.

Modules: ``_config`` (SynthConfig), ``_layout`` (where spreads and chromosomes lie),
``_karyotype`` (chromosome sizes, bands, centre lines, how one is drawn), ``_shapes`` (nuclei,
particles, fibres), ``_scene`` (one picture's objects and ground truth), ``_optics`` (image
formation), ``_dataset`` (data sets on disk).
"""

from ..criteria import CLASSES, MIN_CHROMOSOMES
from ._config import STAINS, STYLES, SynthConfig
from ._dataset import (
    FORMATS,
    LABEL_COLUMNS,
    image_seed,
    plan_labels,
    save_image,
    to_stored,
    write_dataset,
    write_json,
)
from ._karyotype import KARYOTYPE
from ._scene import generate, generate_with_masks, reasons_for

__all__ = [
    "CLASSES",
    "FORMATS",
    "KARYOTYPE",
    "LABEL_COLUMNS",
    "MIN_CHROMOSOMES",
    "STAINS",
    "STYLES",
    "SynthConfig",
    "generate",
    "generate_with_masks",
    "image_seed",
    "plan_labels",
    "reasons_for",
    "save_image",
    "to_stored",
    "write_dataset",
    "write_json",
]
