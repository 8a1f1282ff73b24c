"""The report's two lobe views of the bundled P002 sample, side by side: docs/img/lobes_p002.png.

    python benchmarks/lobes_picture.py [--out docs/img/lobes_p002.png]

Coronal plane through the lungs' centre and the axial slice with the most lesion, lobes tinted
and lesions over them, exactly as `pneumolens analyze` puts them in report.html
(`pneumolens.export.report.region_images`).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    from PIL import Image

    from pneumolens.export.report import region_images
    from pneumolens.pipeline import analyze_path

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", type=Path, default=REPO / "examples" / "covid_ct_md_P002" / "dicom")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "lobes_p002.png")
    args = p.parse_args()
    views = [Image.open(io.BytesIO(v["png"])).convert("RGB") for v in region_images(analyze_path(args.input))]
    height = max(v.height for v in views)
    sheet = Image.new("RGB", (sum(v.width for v in views), height))
    x = 0
    for v in views:
        sheet.paste(v, (x, 0))
        x += v.width
    sheet.save(args.out)
    print(f"{args.out}: {sheet.size[0]}x{sheet.size[1]}")


if __name__ == "__main__":
    main()
