"""Ensembles: the probability is the mean of the members' probabilities (both modes), members must
share their preprocessing, and predict and evaluate take several checkpoints or a multirun folder."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from brainseg.data.preprocessing import Preprocessing
from brainseg.data.projection import Projection
from brainseg.errors import ConfigError
from brainseg.evaluation.evaluate import evaluate
from brainseg.inference.ensemble import (
    MipEnsemble,
    VolumeEnsemble,
    make_ensemble,
    resolve_checkpoints,
)
from brainseg.inference.mip import MipPredictor
from brainseg.inference.predict import load_predictors, predict
from brainseg.inference.volume import VolumePredictor, predict_slices, segment_volume
from tests.conftest import compose_config, phantom, write_nifti
from tests.inference.test_tta import MIP, SLICES, lopsided_net

NAMES = ["a", "b", "c"]


def mip_members(**preprocessing_changes) -> list[MipPredictor]:
    return [MipPredictor(lopsided_net(1, seed), MIP if i else Preprocessing(**{**MIP.__dict__, **preprocessing_changes}), postprocessing=None)
            for i, seed in enumerate((1, 2, 3))]


def test_a_mip_ensemble_averages_its_members_probabilities_before_the_threshold():
    members = mip_members()
    ensemble = make_ensemble(members, NAMES)
    assert isinstance(ensemble, MipEnsemble) and isinstance(ensemble, MipPredictor)
    hu = np.random.default_rng(0).uniform(-1000, 1500, (20, 14)).astype(np.float32)
    projection = Projection(hu, None, (0.8, 1.1))
    got = ensemble.predict(projection)
    each = [member.predict(projection) for member in members]
    np.testing.assert_allclose(got.network_probability, np.mean([p.network_probability for p in each], axis=0), atol=1e-6)
    np.testing.assert_allclose(got.probability, np.mean([p.probability for p in each], axis=0), atol=1e-5)
    np.testing.assert_array_equal(got.mask, (got.probability > 0.5).astype(np.uint8))


def test_a_slice_ensemble_averages_its_members_probabilities_on_the_slices_and_on_the_volume(tmp_path):
    members = [VolumePredictor(lopsided_net(3, seed), SLICES) for seed in (1, 2, 3)]
    ensemble = make_ensemble(members, NAMES)
    assert isinstance(ensemble, VolumeEnsemble) and isinstance(ensemble, VolumePredictor)
    hu = torch.from_numpy(np.random.default_rng(1).uniform(0, 800, (6, 16, 12)).astype(np.float32))
    torch.testing.assert_close(predict_slices(ensemble, hu), torch.stack([predict_slices(m, hu) for m in members]).mean(0), atol=1e-6, rtol=0)
    image, _ = phantom((40, 36, 10))
    path = write_nifti(tmp_path / "case.nii.gz", image, np.diag([2.0, 2.0, 4.0, 1.0]))
    whole = segment_volume(ensemble, path, return_probabilities=True, limits=None).probabilities
    each = [segment_volume(member, path, return_probabilities=True, limits=None).probabilities for member in members]
    np.testing.assert_allclose(whole, np.mean(each, axis=0), atol=1e-5)  # upsampling is linear: the mean carries through


def test_z_scored_members_each_normalize_with_their_own_statistics():
    statistics = [{"low": -50.0, "high": 900.0, "mean": m, "std": 200.0} for m in (100.0, 300.0)]
    members = [MipPredictor(lopsided_net(1, i), Preprocessing("mip", (-100.0, 1900.0), 16, "zscore", s), postprocessing=None)
               for i, s in enumerate(statistics)]
    projection = Projection(np.random.default_rng(3).uniform(-1000, 1500, (16, 16)).astype(np.float32), None, (1.0, 1.0))
    got = make_ensemble(members, NAMES[:2]).predict(projection).network_probability
    np.testing.assert_allclose(got, np.mean([m.predict(projection).network_probability for m in members], axis=0), atol=1e-6)


@pytest.mark.parametrize(
    "members, message",
    [
        (mip_members(hu_window=(-100.0, 1000.0)), "the checkpoints' preprocessing differs: a and b \\(hu_window \\(-100.0, 1000.0\\) vs \\(-100.0, 1900.0\\)\\)"),
        (mip_members(input_size=32), "differs: a and b \\(input_size 32 vs 16\\)"),
        ([MipPredictor(lopsided_net(1), MIP), VolumePredictor(lopsided_net(3), SLICES)], "differs: a and b \\(mode mip vs slices; .*\\)"),
    ],
)
def test_members_with_different_preprocessing_are_refused_in_one_line(members, message):
    with pytest.raises(ConfigError, match=message) as error:
        make_ensemble(members, NAMES[: len(members)])
    assert "\n" not in str(error.value)


def test_disagreeing_thresholds_need_an_explicit_one():
    members = [MipPredictor(lopsided_net(1), MIP, threshold=0.5), MipPredictor(lopsided_net(1, 1), MIP, threshold=0.4)]
    with pytest.raises(ConfigError, match="thresholds differ \\(0.4, 0.5\\); give threshold=VALUE"):
        make_ensemble(members, NAMES[:2])
    assert make_ensemble(members, NAMES[:2], threshold=0.45).threshold == 0.45


# ---- checkpoints on disk -----------------------------------------------------------------------
@pytest.fixture
def multirun(trained_run, tmp_path) -> Path:
    """A multirun folder of two jobs (copies of one trained run, which moved: metrics.json names the old path)."""
    for job in ("0", "1", "10"):
        shutil.copytree(trained_run, tmp_path / "multirun" / job, ignore=shutil.ignore_patterns("tensorboard", "csv"))
    return tmp_path / "multirun"


def test_a_multirun_folder_means_every_jobs_best_checkpoint_in_job_order(multirun, trained_run, tmp_path):
    best = Path(json.loads((trained_run / "metrics.json").read_text())["best_checkpoint"]).name
    assert resolve_checkpoints(str(multirun)) == [multirun / job / "checkpoints" / best for job in ("0", "1", "10")]
    assert resolve_checkpoints([str(multirun / "1"), "x.ckpt"]) == [multirun / "1" / "checkpoints" / best, Path("x.ckpt")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty: no training run \\(checkpoints/\\) in it or in its sub-folders"):
        resolve_checkpoints(str(tmp_path / "empty"))


def test_an_ensemble_of_one_model_twice_scores_as_the_model_and_names_who_voted(multirun, trained_run, tmp_path):
    single = evaluate(compose_config([f"ckpt_path={multirun / '0'}", f"data.cache_root={tmp_path / 'cache'}"], tmp_path / "single", "evaluate"))
    cfg = compose_config([f"ckpt_path=[{multirun / '0'},{multirun / '1'}]", f"data.cache_root={tmp_path / 'cache'}"], tmp_path / "pair", "evaluate")
    pair = evaluate(cfg)
    assert pair["dice/mean"] == pytest.approx(single["dice/mean"], abs=1e-6) and pair["cases"] == single["cases"]
    with open(Path(cfg.paths.output_dir) / "per_case.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    best = resolve_checkpoints(str(multirun / "0"))[0].name
    assert {row["models"] for row in rows} == {f"0/checkpoints/{best} + 1/checkpoints/{best}"}


def test_an_ensemble_of_folds_is_scored_on_held_out_data_only(multirun, tmp_path):
    split = json.loads((multirun / "1" / "split.json").read_text())
    split["test"], split["train"] = split["train"][:2], split["train"][2:] + split["test"]
    (multirun / "1" / "split.json").write_text(json.dumps(split))
    with pytest.raises(ConfigError, match="the checkpoints' runs hold different test splits .* give data.root=DIR"):
        evaluate(compose_config([f"ckpt_path={multirun}"], tmp_path, "evaluate"))


def test_predict_with_a_multirun_folder_writes_which_models_voted(multirun, trained_run, tmp_path):
    cfg = compose_config([f"ckpt_path={multirun}", f"input={trained_run.parent / 'dataset'}", f"output={tmp_path / 'out'}", "tta=flip"], tmp_path, "predict")
    assert predict(cfg) == []
    with open(tmp_path / "out" / "predictions.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 10 and rows[0]["models"].count(" + ") == 2
    ensemble = load_predictors(str(multirun), tta="flip")
    assert len(ensemble.members) == 3 and all(member.tta == "flip" for member in ensemble.members)


def test_an_ensemble_has_no_single_normalized_input_and_says_so():
    ensemble = make_ensemble(mip_members(), NAMES)
    with pytest.raises(TypeError, match="each member of an ensemble normalizes its own input"):
        ensemble.probabilities(torch.zeros(1, 1, 16, 16))
