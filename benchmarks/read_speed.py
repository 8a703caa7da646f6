"""How fast `metasift.io.read_image` turns a 1280x1024 file into the canonical image.

Target (issue 2): an 8-bit TIFF in under 10 ms. Prints the median of --repeat reads per format.

    python benchmarks/read_speed.py [--repeat 50]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from metasift.io import read_image
from metasift.synth import SynthConfig, generate, to_stored


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    grey, _ = generate("available", 1, SynthConfig())
    rgb, _ = generate("available", 1, SynthConfig(stain="giemsa-color"))
    cases = {
        "tif  8-bit grey": ("a.tif", to_stored(grey, 8), {}),
        "tif 16-bit grey": ("b.tif", to_stored(grey, 16), {}),
        "tif  8-bit grey LZW": ("c.tif", to_stored(grey, 8), {"compression": "lzw"}),
        "tif  8-bit RGB": ("d.tif", to_stored(rgb, 8), {"photometric": "rgb"}),
        "png  8-bit grey": ("e.png", to_stored(grey, 8), None),
        "png 16-bit grey": ("f.png", to_stored(grey, 16), None),
        "jpg  8-bit RGB": ("g.jpg", to_stored(rgb, 8), None),
    }
    print(f"read_image on 1280x1024 pictures, median of {args.repeat} reads")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (name, array, tif_kw) in cases.items():
            path = Path(tmp) / name
            if tif_kw is not None:
                tifffile.imwrite(path, array, **tif_kw)
            else:
                Image.fromarray(array).save(path)
            read_image(path)  # warm the caches
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                read_image(path)
                times.append(time.perf_counter() - start)
            print(f"  {label:22s} {np.median(times) * 1000:6.1f} ms")
    print("target: tif 8-bit grey < 10 ms")


if __name__ == "__main__":
    main()
