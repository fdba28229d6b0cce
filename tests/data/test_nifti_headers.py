"""What the NIfTI reader makes of odd header fields: each is read as the standard says, or refused
in one line naming the file. The reader bugs the fuzzer (tests/robustness/test_reader_fuzz.py)
found are pinned here, one row each."""

from __future__ import annotations

import logging
import math

import nibabel as nib
import numpy as np
import pytest

from brainseg.data.nifti import open_nifti
from brainseg.errors import BadCaseError
from tests.conftest import phantom, write_nifti
from tests.robustness.mutants import (
    DATA_TYPES,
    DIM,
    PIXDIM,
    SCL_SLOPE,
    SFORM_CODE,
    patch,
    write_typed,
)

AFFINE = np.diag([0.8, 0.8, 2.0, 1.0])
NAN, INF = float("nan"), float("inf")


@pytest.fixture
def volume_file(tmp_path):
    image, _ = phantom((6, 5, 4))
    return write_nifti(tmp_path / "case.nii.gz", image, AFFINE)


# change -> (header patches [(offset, format, values)], refusal regex or None when read)
HEADERS = {
    "scl_slope 0 means no scaling (scl_inter ignored)": ([(SCL_SLOPE, "ff", (0.0, -1024.0))], None),
    "scl_slope NaN means no scaling, as nibabel reads it": ([(SCL_SLOPE, "ff", (NAN, 5.0))], None),
    "scl_slope Inf means no scaling, as nibabel reads it": ([(SCL_SLOPE, "ff", (INF, 0.0))], None),
    "scl_inter NaN with a valid slope": ([(SCL_SLOPE, "ff", (1.0, NAN))], r"not a readable NIfTI file \(Valid slope but invalid intercept nan\)"),
    "dim[0] 5 with dim[4], dim[5] = 1": ([(DIM, "h", (5,))], None),
    "dim[0] 2": ([(DIM, "h", (2,))], r"expected a 3-D volume, got 2-D with shape \(6, 5\)"),
    "dim[0] 8 (nibabel would read the header byte-swapped)": ([(DIM, "h", (8,))], r"dim\[0\] = 8 is not a number of dimensions"),
    "dim[0] -1": ([(DIM, "h", (-1,))], r"dim\[0\] = -1 is not a number of dimensions"),
    "pixdim NaN, sform kept (the sform is the affine)": ([(PIXDIM + 4, "f", (NAN,))], None),
    "pixdim NaN, no sform": ([(PIXDIM + 4, "f", (NAN,)), (SFORM_CODE, "h", (0,))], r"affine is missing, not finite or singular"),
    "pixdim 10 m, no sform": ([(PIXDIM + 12, "f", (1e4,)), (SFORM_CODE, "h", (0,))],
                              r"voxel size \(0.8, 0.8, 1e\+04\) mm is implausible \(each must be 0.01 to 100 mm\)"),
}


@pytest.mark.parametrize("change", list(HEADERS))
def test_odd_header_fields_are_read_as_the_standard_says_or_refused(volume_file, change):
    patches, refusal = HEADERS[change]
    for offset, fmt, values in patches:
        patch(volume_file, offset, fmt, *values)
    if refusal is None:
        volume = open_nifti(volume_file)
        assert volume.shape == (6, 5, 4) and (volume.slope, volume.intercept) == (1.0, 0.0)
        np.testing.assert_allclose(volume.spacing, [0.8, 0.8, 2.0])
        return
    with pytest.raises(BadCaseError, match=refusal) as error:
        open_nifti(volume_file)
    assert error.value.path == str(volume_file) and "\n" not in str(error.value)


@pytest.mark.parametrize("code", list(DATA_TYPES))
def test_every_nifti_data_type_is_read_when_it_holds_numbers_and_refused_otherwise(tmp_path, code):
    dtype, mask = DATA_TYPES[code], phantom((6, 5, 4))[1]
    path = tmp_path / "case.nii.gz"
    write_typed(path, mask, dtype, code)
    if code == 1536 or code == 2048:  # 128-bit floats: nibabel has no reader for x86's 80-bit long double
        with pytest.raises(BadCaseError, match=rf"not a readable NIfTI file \(data code {code} not supported\)"):
            open_nifti(path)
    elif dtype.kind in "cV":
        with pytest.raises(BadCaseError, match=r"voxels of type (complex\d+|RGBA?) are not numbers brainseg reads"):
            open_nifti(path)
    else:
        volume = open_nifti(path)  # nibabel may have stored the mask scaled, e.g. 0 and 2^64 - 1 with slope 2^-64
        assert volume.dtype == dtype
        np.testing.assert_allclose(volume.scale(volume.read()), mask, atol=1e-6)


def test_values_scaled_beyond_float32_are_refused_not_turned_into_infinity(volume_file):
    patch(volume_file, SCL_SLOPE, "ff", 1e36, 0.0)  # 1200 HU x 1e36 = 1.2e39 > 3.4e38
    volume = open_nifti(volume_file)
    with pytest.raises(BadCaseError, match=r"real voxel values \(stored x 1e\+36 \+ 0\) exceed the float32 range"):
        volume.scale(volume.read())


def test_headers_nibabel_repairs_become_one_warning_naming_the_file_and_print_nothing(volume_file, capsys, caplog):
    patch(volume_file, PIXDIM + 4, "f", -0.8)  # nibabel: "pixdim[1,2,3] should be positive; setting to abs"
    patch(volume_file, SFORM_CODE, "h", 0)
    caplog.set_level(logging.DEBUG)
    volume = open_nifti(volume_file)
    assert volume.warnings == (f"{volume_file}: header check: pixdim[1,2,3] should be positive; setting to abs of pixdim values",)
    assert math.isclose(volume.spacing[0], 0.8, rel_tol=1e-6)
    assert capsys.readouterr().err == "" and caplog.text == ""


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_nifti_2_file_and_a_one_voxel_file_pass_the_header_checks(tmp_path, suffix):
    """NIfTI-2 keeps its magic number and dim[0] elsewhere; a 1-voxel NIfTI-1 file is shorter than a NIfTI-2 header."""
    path = tmp_path / f"case{suffix}"
    nib.save(nib.Nifti2Image(phantom((6, 5, 4))[0], AFFINE), path)
    assert open_nifti(path).shape == (6, 5, 4)
    tiny = write_nifti(tmp_path / f"tiny{suffix}", np.zeros((1, 1, 1), np.int16), AFFINE)
    assert open_nifti(tiny).shape == (1, 1, 1)
