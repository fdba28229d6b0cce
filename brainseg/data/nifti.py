"""NIfTI reading that never surprises: one-line errors for bad files, stored dtypes, bounded memory.

Voxels are streamed from disk in slabs along the slowest storage axis in their stored dtype
(int16 for scanners), so a 512x512x300 volume is never held whole, let alone as float64
(what ``get_fdata()`` would allocate). Rescale slope and intercept are applied to results, not
voxels.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
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
        """Stored values -> real values (HU for CT) as float32."""
        return (values.astype(np.float32) * np.float32(self.slope) + np.float32(self.intercept)).astype(np.float32)


def open_voxel_stream(path: Path):
    """A binary stream of the file's bytes, decompressed: ISA-L for ``.gz`` when installed
    (the decompression is the cost of a MIP; see docs/benchmarks.md), else nibabel's opener."""
    if fast_gzip is not None and path.name.lower().endswith(".gz"):
        return fast_gzip.open(path, "rb")
    return ImageOpener(path, "rb")


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def open_nifti(path: str | Path, max_voxels: int = DEFAULT_MAX_VOXELS) -> NiftiVolume:
    """Open a 3-D NIfTI header and check it before any voxel is read.

    A 4-D image whose extra dimensions are all 1 is accepted as 3-D.

    Raises:
        BadCaseError: missing, unreadable, empty, not NIfTI, not 3-D, too large, or a broken affine.
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
    try:
        image = nib.load(path)
    except (ImageFileError, EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError) as error:
        raise BadCaseError(path, f"not a readable NIfTI file ({_describe(error)})") from None
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
    affine = image.affine
    if affine is None or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise BadCaseError(path, "affine is missing, not finite or singular")
    slope, intercept = image.dataobj.slope, image.dataobj.inter  # the proxy's scaling is what nibabel applies
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    intercept = 0.0 if intercept is None or not np.isfinite(intercept) else float(intercept)
    dtype = header.get_data_dtype()
    offset = int(image.dataobj.offset)  # the header copy on the image may say 0
    if path.name.lower().endswith(".nii") and size < offset + n_voxels * dtype.itemsize:
        raise BadCaseError(path, "file is truncated (fewer voxels than the header declares)")
    return NiftiVolume(path, shape, affine.copy(), dtype, slope, intercept, offset)
