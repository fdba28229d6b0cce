"""Pairing images and masks by case ID, in both layouts, and reporting what cannot be paired."""

import pytest

from brainseg.data.discovery import discover_cases
from tests.conftest import make_dataset, phantom, write_nifti


@pytest.mark.parametrize("layout", ["cta", "nnunet"])
def test_pairs_every_case_in_both_layouts(tmp_path, layout):
    make_dataset(tmp_path, layout, n=3)
    discovery = discover_cases(tmp_path)
    assert [case.case_id for case in discovery.cases] == ["case00", "case01", "case02"]
    assert not discovery.problems
    for case in discovery.cases:
        assert case.case_id in case.image_path.name and case.case_id in case.mask_path.name


def test_folder_names_and_roi_suffix_match_case_insensitively(tmp_path):
    image, mask = phantom()
    write_nifti(tmp_path / "cta IMAGES" / "Case.A-1.nii", image)
    write_nifti(tmp_path / "Brain Masks" / "Case.A-1_roi.nii.gz", mask)
    (case,) = discover_cases(tmp_path).cases
    assert case.case_id == "Case.A-1"  # dots in the ID survive: no file-name surgery


def test_unpaired_and_duplicate_files_are_reported_by_name(tmp_path):
    make_dataset(tmp_path, "cta", n=2)
    image, mask = phantom()
    write_nifti(tmp_path / "CTA images" / "lonely.nii.gz", image)
    write_nifti(tmp_path / "brain masks" / "orphan_ROI.nii.gz", mask)
    write_nifti(tmp_path / "CTA images" / "case01.nii", image)  # duplicate of case01.nii.gz
    (tmp_path / "CTA images" / "notes.txt").write_text("not an image")
    discovery = discover_cases(tmp_path)
    assert [case.case_id for case in discovery.cases] == ["case00"]
    problems = {path.split("/")[-1]: reason for path, reason in discovery.problems.items()}
    assert problems["lonely.nii.gz"] == "image without a mask"
    assert problems["orphan_ROI.nii.gz"] == "mask without an image"
    assert "duplicate case ID 'case01'" in problems["case01.nii"]
    assert "duplicate case ID 'case01'" in problems["case01.nii.gz"]
    assert any(path.endswith("notes.txt") for path in discovery.ignored)


def test_a_folder_without_a_layout_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset layout found"):
        discover_cases(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_cases(tmp_path / "missing")
