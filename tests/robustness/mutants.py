"""Mutants of a good tiny case, for fuzzing the readers: one damaged file per case, seeded.

:func:`make_mutants` writes a dataset folder (the 'cta' layout, 24 x 20 x 8 voxels per case)
in which every case is the phantom with one file changed in one way, and returns a
:class:`Mutant` per case saying which file was changed and how. The kinds follow the ways
clinical exports and converters go wrong: random header bytes, truncations (of the gzip
stream and of the NIfTI inside it), odd voxel sizes, odd scaling, broken affines, every NIfTI
data type, odd ``dim[0]``, single-slice volumes and masks that are not plain {0, 1}.

Header fields are patched in the raw NIfTI-1 bytes (offsets from the standard), not through
nibabel, which would refuse or repair some of them on writing.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from tests.conftest import phantom, write_nifti
from tests.robustness.corpus import AFFINE, IMAGES, MASKS, SHAPE

HEADER_BYTES = 348
DIM, DATATYPE, BITPIX, PIXDIM, VOX_OFFSET = 40, 70, 72, 76, 108
SCL_SLOPE, SCL_INTER, QFORM_CODE, SFORM_CODE, QUATERN_B, SROW_X = 112, 116, 252, 254, 256, 280
# The fields a reader acts on (sizes, type, geometry, scaling, offsets, magic): random bytes are aimed
# here half of the time, since most of the other 348 bytes (description, aux file) are never read.
READ_FIELDS = [*range(0, 4), *range(40, 56), *range(68, 124), *range(252, 348)]

# NIfTI-1 data type code -> numpy dtype (nibabel's table: structured dtypes for RGB)
DATA_TYPES = {
    2: np.dtype(np.uint8), 4: np.dtype(np.int16), 8: np.dtype(np.int32), 16: np.dtype(np.float32),
    32: np.dtype(np.complex64), 64: np.dtype(np.float64), 128: np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")]),
    256: np.dtype(np.int8), 512: np.dtype(np.uint16), 768: np.dtype(np.uint32), 1024: np.dtype(np.int64),
    1280: np.dtype(np.uint64), 1536: np.dtype(np.longdouble), 1792: np.dtype(np.complex128),
    2048: np.dtype(np.clongdouble), 2304: np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")]),
}


@dataclass(frozen=True)
class Mutant:
    """One mutated case: its ID (``<kind>_<n>``), the changed file and the change, in words."""

    case_id: str
    kind: str
    files: tuple[Path, ...]  # the changed files: the image, the mask, or both alike (geometry)
    change: str


def image_path(root: Path, case_id: str, suffix: str = ".nii.gz") -> Path:
    return root / IMAGES / f"{case_id}{suffix}"


def mask_path(root: Path, case_id: str) -> Path:
    return root / MASKS / f"{case_id}_ROI.nii.gz"


def write_good_case(root: Path, case_id: str, image=None, mask=None, affine=None) -> tuple[Path, Path]:
    good_image, good_mask = phantom(SHAPE, seed=0)
    affine = AFFINE if affine is None else affine
    return (write_nifti(image_path(root, case_id), good_image if image is None else image, affine),
            write_nifti(mask_path(root, case_id), good_mask if mask is None else mask, affine))


def read_raw(path: Path) -> bytearray:
    data = path.read_bytes()
    return bytearray(gzip.decompress(data) if path.name.endswith(".gz") else data)


def write_raw(path: Path, raw: bytes) -> None:
    path.write_bytes(gzip.compress(bytes(raw), mtime=0) if path.name.endswith(".gz") else bytes(raw))


def patch(path: Path, offset: int, fmt: str, *values) -> None:
    """Overwrite header field(s) at ``offset`` with ``struct.pack('<' + fmt, *values)``."""
    raw = read_raw(path)
    packed = struct.pack("<" + fmt, *values)
    raw[offset : offset + len(packed)] = packed
    write_raw(path, raw)


class MutantWriter:
    """Writes mutants into ``root``, numbering each kind's cases, and keeps the list."""

    def __init__(self, root: Path, seed: int):
        self.root = root
        self.rng = np.random.default_rng(seed)
        self.mutants: list[Mutant] = []

    def case(self, kind: str, change: str, target: str = "image", **good) -> tuple[Path, ...]:
        """Write a good case for the next mutant of ``kind`` and record it; the files to damage
        (``target`` 'image', 'mask' or 'both': a geometry change made to both stays a matching pair)."""
        case_id = f"{kind}_{sum(m.kind == kind for m in self.mutants):03d}"
        image, mask = write_good_case(self.root, case_id, **good)
        files = {"image": (image,), "mask": (mask,), "both": (image, mask)}[target]
        self.mutants.append(Mutant(case_id, kind, files, f"{target}: {change}"))
        return files

    def patch(self, files: tuple[Path, ...], offset: int, fmt: str, *values) -> None:
        for file in files:
            patch(file, offset, fmt, *values)

    def header_bytes(self, n: int) -> None:
        for i in range(n):
            target = ("image", "mask")[i % 2]
            places = READ_FIELDS if i % 4 < 2 else range(HEADER_BYTES)
            offsets = sorted({int(o) for o in self.rng.choice(places, size=int(self.rng.integers(1, 5)))})
            values = [int(v) for v in self.rng.integers(0, 256, len(offsets))]
            (file,) = self.case("header_bytes", ", ".join(f"byte {o} = {v}" for o, v in zip(offsets, values)), target)
            raw = read_raw(file)
            for offset, value in zip(offsets, values):
                raw[offset] = value
            write_raw(file, raw)

    def truncations(self, n: int) -> None:
        """Cut the gzip file, cut a plain ``.nii``, or gzip a NIfTI that was cut before compression."""
        for i in range(n):
            how = ("gzip stream", "plain .nii", "inside the gzip stream")[i % 3]
            target = ("image", "mask")[(i // 3) % 2]
            (file,) = self.case("truncated", "", target)
            raw, compressed = read_raw(file), file.read_bytes()
            if how == "plain .nii":
                file.unlink()
                file = file.with_name(file.name[: -len(".gz")])
            cut = int(self.rng.integers(0, len(compressed) if how == "gzip stream" else len(raw)))
            if how == "gzip stream":
                file.write_bytes(compressed[:cut])
            elif how == "plain .nii":
                file.write_bytes(bytes(raw[:cut]))
            else:
                write_raw(file, raw[:cut])
            self._replace_last(file, f"{target}: {how} cut at byte {cut} of {len(compressed) if how == 'gzip stream' else len(raw)}")

    def voxel_sizes(self) -> None:
        """pixdim[1..3] zero, negative, NaN, Inf, huge or tiny; with the sform kept, and with the
        sform switched off so that the qform (built from pixdim) is the affine. And pixdim[0] (qfac)."""
        for value in (0.0, -0.8, float("nan"), float("inf"), 1e30, 1e-30, 1e4):
            for axis in (1, 3):
                for sform in (True, False):
                    files = self.case("pixdim", f"pixdim[{axis}] = {value:g}" + ("" if sform else ", sform_code = 0"), "both")
                    self.patch(files, PIXDIM + 4 * axis, "f", value)
                    if not sform:
                        self.patch(files, SFORM_CODE, "h", 0)
        for qfac in (0.0, -1.0, 2.0, float("nan")):
            files = self.case("pixdim", f"pixdim[0] (qfac) = {qfac:g}, sform_code = 0", "both")
            self.patch(files, PIXDIM, "f", qfac)
            self.patch(files, SFORM_CODE, "h", 0)

    def scaling(self) -> None:
        """scl_slope and scl_inter: 0, NaN, Inf, negative, huge, on the image and on the mask."""
        pairs = [(0.0, 0.0), (0.0, -1024.0), (float("nan"), 0.0), (float("inf"), 0.0), (float("-inf"), 0.0),
                 (-1.0, 0.0), (1e30, 0.0), (1.0, float("nan")), (1.0, float("inf")), (1.0, 1e30), (1e-30, 0.0)]
        for target in ("image", "mask"):
            for slope, inter in pairs:
                files = self.case("scaling", f"scl_slope = {slope:g}, scl_inter = {inter:g}", target)
                self.patch(files, SCL_SLOPE, "ff", slope, inter)

    def affines(self) -> None:
        """NaN, zero, singular, huge sforms; NaN quaternions and offsets; out-of-range codes."""
        nan = float("nan")
        sforms = {
            "sform row x NaN": [[nan] * 4, [0, 0.8, 0, 0], [0, 0, 2, 0]],
            "sform all zero": [[0] * 4, [0] * 4, [0] * 4],
            "sform singular (two equal rows)": [[0.8, 0, 0, 0], [0.8, 0, 0, 0], [0, 0, 2, 0]],
            "sform translation Inf": [[0.8, 0, 0, float("inf")], [0, 0.8, 0, 0], [0, 0, 2, 0]],
            "sform huge": [[1e30, 0, 0, 0], [0, 1e30, 0, 0], [0, 0, 1e30, 0]],
            "sform sheared 45 degrees": [[0.8, 0, 2, 0], [0, 0.8, 0, 0], [0, 0, 2, 0]],
            "sform axes permuted (S first)": [[0, 0.8, 0, 0], [0, 0, 2, 0], [0.8, 0, 0, 0]],
        }
        for change, rows in sforms.items():
            for target in ("image", "both"):
                files = self.case("affine", change, target)
                self.patch(files, SROW_X, "12f", *np.asarray(rows, np.float32).ravel())
        qforms = {"quatern_b NaN": (QUATERN_B, "f", nan), "qoffset_x Inf": (QUATERN_B + 12, "f", float("inf")),
                  "quatern_b 5 (|q| > 1)": (QUATERN_B, "f", 5.0)}
        for change, (offset, fmt, value) in qforms.items():
            for target in ("image", "both"):
                files = self.case("affine", f"{change}, sform_code = 0", target)
                self.patch(files, offset, fmt, value)
                self.patch(files, SFORM_CODE, "h", 0)
        for codes in ((0, 0), (99, 0), (0, 99), (-1, -1)):
            files = self.case("affine", f"qform_code = {codes[0]}, sform_code = {codes[1]}", "both")
            self.patch(files, QFORM_CODE, "hh", *codes)

    def data_types(self) -> None:
        """Every NIfTI-1 data type, for the image (HU kept by nibabel's scaling where it can) and the mask."""
        image, mask = phantom(SHAPE, seed=0)
        for code, dtype in DATA_TYPES.items():
            for target in ("image", "mask"):
                (file,) = self.case("dtype", f"datatype {code} ({dtype})", target)
                write_typed(file, image if target == "image" else mask, dtype, code)

    def dims(self) -> None:
        """dim[0] from -1 to 8 (3 is the good value), and a 4-D header with dim[4] = 1."""
        for dim0 in (-1, 0, 1, 2, 4, 5, 6, 7, 8):
            for target in ("image", "mask"):
                files = self.case("dim0", f"dim[0] = {dim0}", target)
                self.patch(files, DIM, "h", dim0)

    def single_slices(self) -> None:
        """Volumes one voxel thick along each axis, image and mask alike (a localizer, a lone slice)."""
        image, mask = phantom(SHAPE, seed=0)
        for axis in range(3):
            cut = [slice(None)] * 3
            cut[axis] = slice(SHAPE[axis] // 2, SHAPE[axis] // 2 + 1)
            self.case("single_slice", f"shape {image[tuple(cut)].shape}", "both", image=image[tuple(cut)], mask=mask[tuple(cut)])

    def mask_values(self) -> None:
        """Masks with several labels, fractional values, all ones, 0/255, negative, tiny floats."""
        mask = phantom(SHAPE, seed=0)[1].astype(np.float32)
        labels = mask * (1 + (np.arange(SHAPE[2]) >= SHAPE[2] // 2))  # 1 below, 2 above
        variants = {
            "labels {0, 1, 2}": labels, "a label per slice (1 to 8)": mask * (1 + np.arange(SHAPE[2])),
            "fractional {0, 0.5, 1}": labels / 2, "fractional {0, 0.3}": mask * 0.3, "probabilities in [0, 1]":
            mask * np.linspace(0.1, 1, SHAPE[2]), "all ones": np.ones(SHAPE, np.float32), "{0, 255}": mask * 255,
            "{0, -1}": -mask, "{0, 1e-30}": mask * 1e-30, "all ones, uint8": np.ones(SHAPE, np.uint8),
        }
        for change, values in variants.items():
            self.case("mask_values", change, "mask", mask=values)

    def _replace_last(self, file: Path, change: str) -> None:
        last = self.mutants.pop()
        self.mutants.append(Mutant(last.case_id, last.kind, (file,), change))


def write_typed(path: Path, values: np.ndarray, dtype: np.dtype, code: int) -> None:
    """``values`` stored as NIfTI data type ``code`` (numpy ``dtype``). nibabel scales into integer
    types that cannot hold them; complex gets a zero imaginary part, RGB(A) the values (clipped
    to bytes) in every channel. Types nibabel cannot write here (128-bit floats on x86, whose
    ``longdouble`` is not IEEE binary128) are patched into a float64 file by hand."""
    if dtype.kind == "V":
        stored = np.zeros(values.shape, dtype)
        for channel in dtype.names:
            stored[channel] = np.clip(values, 0, 255).astype(np.uint8)
        write_nifti(path, stored, AFFINE)
    elif dtype.itemsize * 8 > 128 or (dtype.kind in "fc" and dtype.itemsize >= 16):
        write_nifti(path, values.astype(np.float64), AFFINE)
        raw = read_raw(path)
        offset = int(struct.unpack("<f", raw[VOX_OFFSET : VOX_OFFSET + 4])[0])
        raw[DATATYPE : DATATYPE + 4] = struct.pack("<hh", code, dtype.itemsize * 8)
        write_raw(path, raw[:offset] + values.astype(dtype).tobytes(order="F"))
    else:
        image = nib.Nifti1Image(values.astype(np.float64 if dtype.kind in "iu" else dtype), AFFINE)
        image.set_data_dtype(dtype)
        image.set_qform(AFFINE, code=1)
        image.set_sform(AFFINE, code=1)
        nib.save(image, path)


def make_mutants(root: Path, seed: int = 0, header_bytes: int = 100, truncations: int = 60) -> list[Mutant]:
    """Write every mutant into the dataset folder ``root``; ``seed`` fixes the random ones."""
    writer = MutantWriter(root, seed)
    writer.header_bytes(header_bytes)
    writer.truncations(truncations)
    writer.voxel_sizes()
    writer.scaling()
    writer.affines()
    writer.data_types()
    writer.dims()
    writer.single_slices()
    writer.mask_values()
    return writer.mutants
