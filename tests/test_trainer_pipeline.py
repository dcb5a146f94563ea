"""The `ci` recipe end to end, the data split, and `enecg train` on misuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.bundle import load_bundle
from streamer.cli.main import build_parser, log_level, main
from trainer.pipeline import _eval_records, build_ci_bundle, load_data
from trainer.recipes import CI, RECIPES

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.slow
def test_ci_recipe_trains_and_its_bundle_loads_and_predicts(tmp_path: Path) -> None:
    bundle_dir = build_ci_bundle(tmp_path / "run", records_dir=FIXTURES)
    manifest, model = load_bundle(bundle_dir)
    x = torch.randn(3, manifest.input.n_leads, manifest.input.n_samples) * 0.5
    out = model(x)
    assert out["rhythm_prob"].shape == (3, len(manifest.tasks["rhythm"]))
    assert torch.isfinite(out["qrs_prob"]).all()
    assert manifest.metrics and all(m.data for m in manifest.metrics.values())
    assert "A0003_af_window_share" in manifest.metrics  # real records are evaluated, not trained on
    assert manifest.training.records == []  # synthetic only
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["methods"]) == {"enecg", "single-resnet", "full-resnet"}
    assert (tmp_path / "run" / "report.md").read_text().startswith("# EnECG training report")
    assert len(list((tmp_path / "run").glob("report-*.png"))) >= 3


def test_real_records_split_by_record_and_trained_records_are_not_evaluated() -> None:
    recipe = CI.model_copy(update={"synthetic_train": 16, "synthetic_val": 8, "synthetic_test": 8})
    data = load_data(recipe, seed=0, data_paths=[FIXTURES / "cpsc2018"])
    real = data.summary["real"]
    sides = [set(real[k]) for k in ("train", "val", "test")]
    assert sides[0] and sides[2]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert set(np.unique(data.train.record_id)) >= sides[0]
    assert not set(np.unique(data.real_test.record_id)) & (sides[0] | sides[1])
    from models.config import InputSpec

    spec = InputSpec.model_validate(recipe.model.input.model_dump())
    records, notes = _eval_records([FIXTURES / "cpsc2018"], spec, exclude=set(data.train_records))
    assert {r.record_id for r in records} == sides[2]
    assert len(notes) == len(sides[0] | sides[1])


def test_recipes_name_their_records_relative_to_a_records_directory() -> None:
    """An installed package has no tests/fixtures: recipes name records, the run is given the directory."""
    for recipe in RECIPES.values():
        assert recipe.eval_records
        for name in recipe.eval_records:
            assert not Path(name).is_absolute()
            assert (FIXTURES / name).with_suffix(".hea").exists(), name


def test_recipes_do_not_import_the_pipeline() -> None:
    """trainer.pipeline imports the recipes; the recipes must not import it back (it was a cycle)."""
    import subprocess
    import sys

    code = "import sys, trainer.recipes; print('trainer.pipeline' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_train_refuses_a_used_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old").write_text("x")
    assert main(["train", "--recipe", "ci", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--resume" in err


def test_train_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    assert "enecg train --recipe default" in capsys.readouterr().out


def test_train_logs_progress_by_default_and_log_level_still_wins() -> None:
    """`enecg train` runs for up to an hour with its output often redirected (no progress bars there): its
    epochs are logged at INFO unless --log-level says otherwise; other commands stay at WARNING."""
    parser = build_parser()
    assert log_level(parser.parse_args(["train", "-o", "x"])) == "INFO"
    assert log_level(parser.parse_args(["--log-level", "error", "train", "-o", "x"])) == "ERROR"
    assert log_level(parser.parse_args(["schema"])) == "WARNING"
