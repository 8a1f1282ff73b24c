"""Fuzzing the DICOM reader with mutated real slices (run by ``test_fuzz_reader.py``).

A corpus of real CT slices (P002's JPEG-Lossless slices from ``examples/``, and uncompressed
slices written by :func:`pneumolens.io.dicom_write.write_ct_series`) is mutated at random:
bytes flipped in the header or the pixel data, a value representation garbled, a decimal
string replaced, bytes inserted or deleted, the file truncated. Each mutated series goes
through :func:`pneumolens.io.load_scan`. The rule: a scan comes back, or
:class:`~pneumolens.errors.InputError` with a message; any other exception is a crash.

Run as a script it fuzzes for a time budget and prints one JSON line per crash and a summary:

    python tests/io/fuzz_reader.py --seconds 60 --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
P002 = REPO / "examples" / "covid_ct_md_P002" / "dicom"

#: Byte patterns of DICOM value representations, where a garbled VR does the most damage.
_VRS = [vr.encode() for vr in ("UI", "DS", "US", "CS", "IS", "OB", "OW", "SQ", "UL", "LO", "SH", "DA", "TM")]
#: Decimal-string replacements: what a broken exporter writes into DS values.
_BAD_DS = [b"nan", b"inf", b"-0", b"0", b"1e308", b"\\\\", b"--1", b"  ", b"1\\2\\3\\4", b"abc"]


def corpus(folder: Path, *, n_slices: int = 4) -> list[list[Path]]:
    """Series to mutate: consecutive P002 slices, and a small uncompressed synthetic series."""
    import numpy as np

    from pneumolens.io.dicom_write import write_ct_series

    series = []
    real = sorted(P002.glob("*.dcm"))
    if real:
        start = len(real) // 2
        series.append(real[start : start + n_slices])
    rng = np.random.default_rng(0)
    volume = np.full((n_slices, 48, 40), -1000, dtype=np.int16)
    volume[:, 4:-4, 4:-4] = 40
    volume[:, 10:-10, 8:18] = -850
    volume[:, 10:-10, 22:32] = -860
    volume += rng.integers(-20, 21, size=volume.shape, dtype=np.int16)
    series.append(write_ct_series(volume, (2.0, 0.7, 0.7), folder / "synthetic"))
    return series


def _pixel_offset(data: bytes) -> int:
    """Offset of the Pixel Data element (7FE0,0010), or the end of the data."""
    index = data.rfind(b"\xe0\x7f\x10\x00")
    return index if index > 0 else len(data)


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of a DICOM file's bytes; returns the bytes and what was done."""
    out = bytearray(data)
    if len(out) < 256:  # already cut short: cut further or flip a byte
        if out:
            del out[rng.randrange(len(out)) :]
        return bytes(out), "truncate"
    pixels = _pixel_offset(data)
    kind = rng.choice(["header-bytes", "pixel-bytes", "vr", "ds", "truncate", "insert", "delete", "any-bytes"])
    if kind == "header-bytes":
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(128, max(129, pixels))] = rng.randrange(256)
    elif kind == "pixel-bytes" and pixels < len(out) - 16:
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(pixels + 12, len(out))] = rng.randrange(256)
    elif kind == "vr":
        spots = [m.start() for vr in _VRS for m in re.finditer(re.escape(vr), bytes(out[:pixels]))]
        if spots:
            at = rng.choice(spots)
            out[at : at + 2] = bytes([rng.randrange(256), rng.randrange(256)])
    elif kind == "ds":
        spots = [m.start() for m in re.finditer(rb"-?\d+\.\d+", bytes(out[:pixels]))]
        if spots:
            at = rng.choice(spots)
            end = at + len(re.match(rb"-?\d+\.\d+", bytes(out[at:])).group())
            bad = rng.choice(_BAD_DS)
            bad = (bad + b" " * (end - at))[: end - at]  # same length: element lengths stay valid
            out[at:end] = bad
    elif kind == "truncate":
        del out[rng.randrange(0, len(out)) :]
    elif kind == "insert":
        at = rng.randrange(128, len(out))
        out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "delete":
        at = rng.randrange(128, len(out))
        del out[at : at + rng.randint(1, 16)]
    else:
        for _ in range(rng.randint(1, 16)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out), kind


def run(seconds: float, seed: int, *, max_inputs: int | None = None) -> dict[str, object]:
    """Fuzz for ``seconds``; returns counts and the crashes found."""
    import numpy as np

    from pneumolens.errors import InputError
    from pneumolens.io import load_scan
    from pneumolens.io.dicom_headers import lenient_pydicom

    rng = random.Random(seed)
    results = {"tried": 0, "scans": 0, "identical": 0, "few_voxels_differ": 0, "input_errors": 0,
               "crashes": [], "wrong": []}
    with tempfile.TemporaryDirectory(prefix="pneumolens-fuzz-") as tmp:
        root = Path(tmp)
        paths = corpus(root)
        series_list = [[(p.name, p.read_bytes()) for p in s] for s in paths]
        clean = [load_scan(s[0].parent if s[0].parent.name == "synthetic" else list(s)) for s in paths]
        start = time.monotonic()
        while time.monotonic() - start < seconds and (max_inputs is None or results["tried"] < max_inputs):
            which = rng.randrange(len(series_list))
            series = series_list[which]
            folder = root / f"case{results['tried']}"
            folder.mkdir()
            done = []
            targets = rng.sample(range(len(series)), rng.choice([1, 1, 1, 2]))
            for index, (name, data) in enumerate(series):
                if index in targets:
                    for _ in range(rng.choice([1, 1, 2])):
                        data, kind = mutate(data, rng)
                        done.append(f"{name}:{kind}")
                (folder / name).write_bytes(data)
            results["tried"] += 1
            try:
                with lenient_pydicom():
                    scan = load_scan(folder)
                results["scans"] += 1
                verdict = _compare(scan, clean[which], np)
                if verdict == "wrong":
                    ref = clean[which]
                    detail = {}
                    if scan.shape == ref.shape:
                        diff = np.abs(scan.volume.astype(np.int32) - ref.volume)
                        detail = {"changed_voxels": int((diff > 0).sum()),
                                  "mean_abs_hu_per_slice": diff.mean(axis=(1, 2)).round(1).tolist()}
                    results["wrong"].append({"mutations": done, "shape": list(scan.shape), **detail})
                else:
                    results[verdict] += 1
            except InputError as exc:
                if not exc.what:
                    results["crashes"].append({"mutations": done, "error": "InputError without a message"})
                results["input_errors"] += 1
            except Exception as exc:  # noqa: BLE001 - the point of the fuzz test
                results["crashes"].append(
                    {
                        "mutations": done,
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                        "where": traceback.format_exc().splitlines()[-3][:200],
                    }
                )
                keep = root.parent / f"pneumolens-fuzz-crash-{seed}-{results['tried']}"
                shutil.copytree(folder, keep, dirs_exist_ok=True)
            shutil.rmtree(folder)
    return results


#: Mutated pixel bytes change at most this many voxels of a result that is still "correct":
#: a flipped byte of uncompressed data is one wrong voxel, which no check can see.
MAX_CHANGED_VOXELS = 64


def _compare(scan, reference, np) -> str:
    """``identical``, ``few_voxels_differ`` (flipped uncompressed bytes) or ``wrong``."""
    if scan.shape != reference.shape or not np.allclose(scan.affine, reference.affine, atol=1e-3):
        # A slice fewer (a skipped duplicate) or another geometry: only acceptable with a warning.
        return "few_voxels_differ" if scan.info.warnings != reference.info.warnings else "wrong"
    changed = int((scan.volume != reference.volume).sum())
    if changed == 0:
        return "identical"
    return "few_voxels_differ" if changed <= MAX_CHANGED_VOXELS else "wrong"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-inputs", type=int, default=None)
    args = parser.parse_args(argv)
    results = run(args.seconds, args.seed, max_inputs=args.max_inputs)
    for crash in results["crashes"] + results["wrong"]:
        print(json.dumps(crash))
    summary = {k: v for k, v in results.items() if k not in ("crashes", "wrong")}
    summary |= {"crashes": len(results["crashes"]), "wrong": len(results["wrong"])}
    print(json.dumps(summary))
    return 1 if results["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
