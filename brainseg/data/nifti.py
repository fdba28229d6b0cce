"""NIfTI reading that never surprises: one-line errors for bad files, stored dtypes, bounded memory.

Voxels are streamed from disk in slabs along the slowest storage axis in their stored dtype
(int16 for scanners), so a 512x512x300 volume is never held whole, let alone as float64
(what ``get_fdata()`` would allocate). Rescale slope and intercept are applied to results, not
voxels. The header is untrusted input: whatever nibabel makes of it, a file is either opened
with a usable geometry and number type or refused in one line (docs/robustness.md lists which).
"""

from __future__ import annotations

import gzip
import logging
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener

from brainseg.errors import BadCaseError

try:  # ISA-L's inflate is about twice as fast as zlib's; `pip install isal` (optional, same results)
    from isal import igzip as fast_gzip
    from isal.isal_zlib import error as FastGzipError
except ImportError:  # pragma: no cover - the standard library's gzip then
    fast_gzip, FastGzipError = None, zlib.error

# A header that declares more voxels than this is refused before anything is allocated
# (1024^3 int16 is 2 GiB; no head CT comes near it).
DEFAULT_MAX_VOXELS = 1024**3
SLAB_BYTES = 16 * 2**20  # bytes decompressed per read: large enough to amortise, small next to a volume
# Voxel sizes outside this range (mm) come from a damaged header, not a scanner; they would also
# make resampling to a millimetre grid allocate absurd arrays.
VOXEL_SIZE_RANGE_MM = (0.01, 100.0)
NUMBER_KINDS = "iuf"  # integers and reals; complex and RGB(A) voxels are not CT intensities or a mask
HEADER_BYTES, NIFTI2_HEADER_BYTES = 348, 540
NIFTI_MAGIC = {1: (344, (b"n+1\x00", b"ni1\x00")), 2: (4, (b"n+2\x00", b"ni2\x00"))}  # version -> (offset, magic)


@dataclass(frozen=True)
class NiftiVolume:
    """A NIfTI header opened for streaming: geometry and scaling, no voxels yet."""

    path: Path
    shape: tuple[int, int, int]
    affine: np.ndarray
    dtype: np.dtype
    slope: float
    intercept: float
    offset: int
    warnings: tuple[str, ...] = ()  # header fields nibabel reported or repaired, one line each naming the file

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along each storage axis."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def orientation(self) -> np.ndarray:
        """nibabel orientation: for each storage axis, (RAS axis index, +1/-1 flip)."""
        return nib.io_orientation(self.affine)

    @property
    def axcodes(self) -> str:
        return "".join(nib.aff2axcodes(self.affine))

    def iter_slabs(self, slab_bytes: int = SLAB_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_slice, slab)`` along storage axis 2 in the stored dtype, unscaled.

        Data are read sequentially from one open file, so a gzip stream is decompressed once.

        Raises:
            BadCaseError: the file is truncated or its compressed stream is corrupt.
        """
        nx, ny, nz = self.shape
        slice_bytes = nx * ny * self.dtype.itemsize
        per_slab = max(1, slab_bytes // max(slice_bytes, 1))
        try:
            with open_voxel_stream(self.path) as stream:
                stream.seek(self.offset)
                for start in range(0, nz, per_slab):
                    count = min(per_slab, nz - start)
                    buffer = stream.read(slice_bytes * count)
                    if len(buffer) != slice_bytes * count:
                        raise BadCaseError(self.path, "file is truncated (fewer voxels than the header declares)")
                    slab = np.frombuffer(buffer, dtype=self.dtype).reshape((nx, ny, count), order="F")
                    yield start, slab
        except (EOFError, OSError, zlib.error, gzip.BadGzipFile, FastGzipError) as error:
            raise BadCaseError(self.path, f"unreadable data ({_describe(error)})") from None

    def read(self) -> np.ndarray:
        """The whole volume in its stored dtype, unscaled (for code that needs all voxels at once)."""
        volume = np.empty(self.shape, dtype=self.dtype, order="F")
        for start, slab in self.iter_slabs():
            volume[:, :, start : start + slab.shape[2]] = slab
        return volume

    def scale(self, values: np.ndarray) -> np.ndarray:
        """Stored values -> real values (HU for CT) as float32.

        Raises:
            BadCaseError: a value is NaN or Inf, or the scaling takes it beyond float32.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = (values.astype(np.float32) * np.float32(self.slope) + np.float32(self.intercept)).astype(np.float32)
        if not np.isfinite(scaled).all():
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                raise BadCaseError(self.path, "contains NaN or Inf voxels")
            raise BadCaseError(self.path, f"real voxel values (stored x {self.slope:g} + {self.intercept:g}) exceed the float32 range")
        return scaled


def open_voxel_stream(path: Path):
    """A binary stream of the file's bytes, decompressed: ISA-L for ``.gz`` when installed
    (the decompression is the cost of a MIP; see docs/benchmarks.md), else nibabel's opener."""
    if fast_gzip is not None and path.name.lower().endswith(".gz"):
        return fast_gzip.open(path, "rb")
    return ImageOpener(path, "rb")


def _describe(error: BaseException, path: Path | None = None) -> str:
    """The first line of an error's message, without the file's path (the caller names the file)."""
    text = str(error)
    if path is not None:
        text = re.sub(rf"\s*(of |for )?['\"]?{re.escape(str(path))}['\"]?", "", text)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(error).__name__


def check_header_bytes(path: Path) -> None:
    """Refuse, before nibabel parses it, a header that it would misread or refuse obscurely: a
    compressed stream that is damaged or cut, a header cut short, no NIfTI magic number, or a
    ``dim[0]`` outside 0-7 in both byte orders (nibabel guesses the byte order from ``dim[0]``,
    so it would read every other field byte-swapped).

    Raises:
        BadCaseError: with what is wrong in the header's bytes.
    """
    try:
        with open_voxel_stream(path) as stream:
            header = stream.read(NIFTI2_HEADER_BYTES)
    except gzip.BadGzipFile:
        raise BadCaseError(path, "not a readable NIfTI file (not gzip-compressed, though named .gz)") from None
    except (EOFError, OSError, zlib.error, FastGzipError) as error:
        raise BadCaseError(path, f"unreadable data ({_describe(error, path)})") from None
    version = next((v for v, (at, magic) in NIFTI_MAGIC.items() if header[at : at + 4] in magic), None)
    needed = NIFTI2_HEADER_BYTES if version == 2 else HEADER_BYTES
    if len(header) < needed:
        raise BadCaseError(path, f"file is truncated (the header has {len(header)} of {needed} bytes)")
    if version is None:
        raise BadCaseError(path, "not a readable NIfTI file (no NIfTI-1 or NIfTI-2 magic number in the header)")
    at, size = (40, "h") if version == 1 else (16, "q")
    dims = [struct.unpack_from(order + size, header, at)[0] for order in "<>"]
    if not any(0 <= dim <= 7 for dim in dims):
        raise BadCaseError(path, f"dim[0] = {dims[0]} is not a number of dimensions (0 to 7) in either byte order")


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _quiet_header_checks() -> Iterator[list[str]]:
    """Collect what nibabel's header checks report while a file loads. nibabel prints them to
    stderr on its own handler, without the file's name; they become the volume's warnings instead.
    Floating-point warnings of odd fields (NaN quaternions) are silenced: the affine check reports them."""
    logger = nib.imageglobals.logger
    collector = _Messages()
    handlers, propagate = list(logger.handlers), logger.propagate
    for handler in handlers:
        logger.removeHandler(handler)
    logger.addHandler(collector)
    logger.propagate = False
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            yield collector.messages
    finally:
        logger.removeHandler(collector)
        for handler in handlers:
            logger.addHandler(handler)
        logger.propagate = propagate


def open_nifti(path: str | Path, max_voxels: int = DEFAULT_MAX_VOXELS) -> NiftiVolume:
    """Open a 3-D NIfTI header and check it before any voxel is read.

    A 4-D image whose extra dimensions are all 1 is accepted as 3-D.

    Raises:
        BadCaseError: missing, unreadable, empty, not NIfTI, not 3-D, too large, a broken affine,
            an implausible voxel size or voxels that are not numbers (complex, RGB).
    """
    path = Path(path)
    if not path.exists():
        raise BadCaseError(path, "file does not exist")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except PermissionError:
        raise BadCaseError(path, "permission denied") from None
    if size == 0:
        raise BadCaseError(path, "file is empty (0 bytes)")
    check_header_bytes(path)
    with _quiet_header_checks() as header_messages:
        try:
            image = nib.load(path)
            affine = image.affine
        except Exception as error:  # nibabel parses untrusted bytes: whatever it raises, the file is unreadable
            raise BadCaseError(path, f"not a readable NIfTI file ({_describe(error, path)})") from None
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise BadCaseError(path, f"not a NIfTI image ({type(image).__name__})")
    header = image.header
    shape = tuple(int(n) for n in header.get_data_shape())
    if len(shape) > 3 and all(n == 1 for n in shape[3:]):
        shape = shape[:3]
    if len(shape) != 3:
        raise BadCaseError(path, f"expected a 3-D volume, got {len(shape)}-D with shape {shape}")
    if min(shape) < 1:
        raise BadCaseError(path, f"empty volume shape {shape}")
    n_voxels = int(np.prod(shape, dtype=np.int64))
    if n_voxels > max_voxels:
        raise BadCaseError(path, f"header declares {shape} = {n_voxels:,} voxels, over the limit of {max_voxels:,}")
    if affine is None or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3].astype(np.float64))) < 1e-9:
        raise BadCaseError(path, "affine is missing, not finite or singular")
    voxel_mm = np.sqrt((affine[:3, :3].astype(np.float64) ** 2).sum(axis=0))
    low, high = VOXEL_SIZE_RANGE_MM
    if not np.all((voxel_mm >= low) & (voxel_mm <= high)):
        shown = ", ".join(f"{mm:.3g}" for mm in voxel_mm)
        raise BadCaseError(path, f"voxel size ({shown}) mm is implausible (each must be {low:g} to {high:g} mm)")
    slope, intercept = image.dataobj.slope, image.dataobj.inter  # the proxy's scaling is what nibabel applies
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    intercept = 0.0 if intercept is None or not np.isfinite(intercept) else float(intercept)
    dtype = header.get_data_dtype()
    if dtype.kind not in NUMBER_KINDS:
        raise BadCaseError(path, f"voxels of type {header.get_value_label('datatype')} are not numbers brainseg reads (integer or real)")
    offset = int(image.dataobj.offset)  # the header copy on the image may say 0
    if path.name.lower().endswith(".nii") and size < offset + n_voxels * dtype.itemsize:
        raise BadCaseError(path, "file is truncated (fewer voxels than the header declares)")
    repairs = tuple(f"{path}: header check: {message}" for message in header_messages)
    return NiftiVolume(path, shape, affine.copy(), dtype, slope, intercept, offset, repairs)


def read_header(path: str | Path) -> nib.Nifti1Header | nib.Nifti2Header:
    """The header of a file that :func:`open_nifti` accepted, as nibabel repairs it, without
    nibabel's messages (``open_nifti`` turned them into the volume's warnings)."""
    with _quiet_header_checks():
        return nib.load(path).header
