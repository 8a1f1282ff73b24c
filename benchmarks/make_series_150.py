"""Build a real ~150-slice 512x512 DICOM series for the end-to-end benchmark.

The bundled P002 series (real COVID-19 chest CT, 133 slices of 512x512 at 2 mm, JPEG-Lossless)
is resampled along z to ``--slices`` slices (default 150, 1.77 mm) by linear interpolation of
the stored values between neighbouring slices, and written as a new DICOM series: each slice
keeps the header of its nearest source slice with a new position, instance number and UIDs,
and its pixels compressed as JPEG-LS Lossless (a compressed transfer syntax, so decoding costs
what it costs on real archives). Anatomy, noise and HU are those of the real scan.

Usage::

    python benchmarks/make_series_150.py --out /tmp/pneumolens-bench/p002_150
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "examples" / "covid_ct_md_P002" / "dicom"


def build(out: Path, *, slices: int = 150, source: Path = SOURCE) -> Path:
    """Write the resampled series into ``out`` (created); returns ``out``."""
    import pydicom
    from pydicom.uid import JPEGLSLossless, generate_uid

    datasets = [pydicom.dcmread(p) for p in sorted(source.iterdir()) if p.is_file()]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    z = np.array([float(ds.ImagePositionPatient[2]) for ds in datasets])
    stored = np.stack([ds.pixel_array for ds in datasets]).astype(np.float64)
    targets = np.linspace(z[0], z[-1], slices)
    series_uid = generate_uid(entropy_srcs=["pneumolens benchmark", str(slices), datasets[0].SeriesInstanceUID])
    out.mkdir(parents=True, exist_ok=True)
    dtype = datasets[0].pixel_array.dtype
    for k, zk in enumerate(targets):
        hi = int(np.clip(np.searchsorted(z, zk), 1, len(z) - 1))
        w = (zk - z[hi - 1]) / (z[hi] - z[hi - 1])
        pixels = np.round((1 - w) * stored[hi - 1] + w * stored[hi]).astype(dtype)
        ds = datasets[hi - 1 if w < 0.5 else hi].copy()
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], float(round(zk, 4))]
        if "SliceLocation" in ds:
            ds.SliceLocation = float(round(zk, 4))
        ds.InstanceNumber = k + 1
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesDescription = f"{ds.get('SeriesDescription', '')} resampled to {slices} slices".strip()
        ds.compress(JPEGLSLossless, pixels)
        ds.save_as(out / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--slices", type=int, default=150)
    args = parser.parse_args()
    print(build(args.out, slices=args.slices))


if __name__ == "__main__":
    main()
