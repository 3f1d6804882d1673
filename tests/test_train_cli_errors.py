"""``em-inverse train`` on bad input: one ``error:`` line, exit status 2, no traceback, and no
folder or file written or overwritten (tiny toy2d runs of a few steps)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from em_inverse.errors import UserError
from em_inverse.training import TrainConfig, Trainer

runner = CliRunner()
TINY = ["--steps", "2", "--batch-size", "8", "--langevin-steps", "2", "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def app():
    from em_inverse.cli.app import app

    return app


def train(app, out: Path, *extra: str, data: str = "toy2d:moons"):
    return runner.invoke(app, ["train", "--data", data, *TINY, "--out", str(out), *extra])


def assert_clean_error(result, message: str) -> None:
    """Exit status 2 and one ``error:`` line on stderr that contains ``message``."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_fresh_run_refuses_a_folder_that_already_holds_a_prior(app, tmp_path):
    finished = tmp_path / "finished"
    assert train(app, finished).exit_code == 0
    (finished / "checkpoint.safetensors").unlink()   # a finished run, checkpoint deleted
    before = snapshot(finished)
    result = train(app, finished, "--seed", "7")
    assert_clean_error(result, f"{finished} already holds a prior (config.json, "
                               "weights.safetensors)")
    assert snapshot(finished) == before
    assert_clean_error(train(app, finished, "--resume"), "no checkpoint to resume from")


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder that refuses new entries: a read-only one, or for root (whom permission bits
    do not stop) /sys; skips the test where neither refuses."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    for folder in (locked, Path("/sys")):
        try:
            os.rmdir(tempfile.mkdtemp(dir=folder))
        except OSError:
            return folder
    pytest.skip("no unwritable folder here")


@pytest.mark.parametrize("case", ["file", "below a file", "unwritable"])
def test_an_out_that_is_a_file_or_cannot_be_written_is_a_clean_error(app, tmp_path, case):
    picture = tmp_path / "some.png"
    picture.write_bytes(b"not a folder")
    out, message = {"file": (picture, "is a file, not a folder"),
                    "below a file": (picture / "run", "some.png is a file, not a folder"),
                    "unwritable": (unwritable_folder(tmp_path) / "t17", "cannot write into")}[case]
    assert_clean_error(train(app, out), message)
    assert picture.read_bytes() == b"not a folder"
    assert picture.is_file() if case == "file" else not out.exists()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder: data set of one colour 40x40 image."""
    folder = tmp_path_factory.mktemp("photos")
    np.save(folder / "colour.npy", np.random.default_rng(0).random((3, 40, 40)))
    return folder


@pytest.mark.parametrize("data,arch,message", [
    ("toy2d:moons", {"type": "ConvEnergy"}, "ConvEnergy takes images, the data moons has vectors"),
    ("photos", {"type": "MLPEnergy"}, "MLPEnergy takes vectors"),
    ("toy2d:moons", {"type": "MLPEnergy", "width": -3}, "width of the architecture MLPEnergy "
                                                        "must be a positive integer, got -3"),
    ("toy2d:moons", {"type": "MLPEnergy", "depth": 1.5}, "must be a positive integer"),
    ("toy2d:moons", {"width": 8}, 'has no "type"'),
    ("photos", {"type": "ConvEnergy", "width": 4}, "3 channel(s), the architecture ConvEnergy "
                                                   "takes 1"),
    # passes the explicit checks; evaluating it on two samples (the backstop) fails
    ("photos", {"type": "OpponentEnergy", "channel_energy": {
        "type": "GlobalEnergy", "channels": 1, "image_size": [8, 8], "width": 2, "hidden": 4}},
     "does not fit the data folder:"),
])
def test_an_architecture_that_does_not_fit_the_data_fails_before_anything_is_written(
        app, tmp_path, photos, data, arch, message):
    data = f"folder:{photos}" if data == "photos" else data
    out = tmp_path / "o" / "t25"
    result = train(app, out, "--arch", json.dumps(arch), "--crop", "16", data=data)
    assert_clean_error(result, message)
    assert not (tmp_path / "o").exists()


def test_a_failed_resume_leaves_no_folder_behind(app, tmp_path):
    out = tmp_path / "o" / "t8"
    assert_clean_error(train(app, out, "--resume"), "no checkpoint to resume from")
    assert not (tmp_path / "o").exists()
    config = TrainConfig.from_dict({"data": "toy2d:moons", "steps": 2, "batch_size": 8,
                                    "langevin_steps": 2})
    with pytest.raises(UserError, match="no checkpoint to resume from"):  # the API too
        Trainer(config, out, torch.device("cpu"), quiet=True).fit(resume=True)
    assert not (tmp_path / "o").exists()


def test_resuming_a_finished_run_with_fewer_steps_is_refused_and_changes_nothing(app, tmp_path):
    run = tmp_path / "run"
    assert train(app, run, "--steps", "4").exit_code == 0
    before = snapshot(run)
    result = train(app, run, "--steps", "3", "--resume")
    assert_clean_error(result, "already trained 4 steps, more than --steps 3; pass --steps 4 "
                               "or more")
    assert snapshot(run) == before
    loud = [arg for arg in TINY if arg != "-q"]   # the message is chatter, which -q drops
    again = runner.invoke(app, ["train", "--data", "toy2d:moons", *loud, "--steps", "4",
                                "--out", str(run), "--resume"])
    assert again.exit_code == 0 and "nothing left to train" in again.stderr
    assert json.loads((run / "train_config.json").read_text())["steps"] == 4


def test_a_config_file_must_be_a_toml_or_json_table(app, tmp_path):
    (tmp_path / "cfg.yaml").write_text("steps: 3\n")
    (tmp_path / "list.json").write_text("[1, 2]\n")
    (tmp_path / "cfg.json").write_text('{"data": "toy2d:moons", "steps": 3}\n')
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "cfg.yaml"),
                                 "--out", str(tmp_path / "run")])
    assert_clean_error(result, "cfg.yaml must be a .toml or .json file, not .yaml")
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "list.json"),
                                 "--out", str(tmp_path / "run")])
    assert_clean_error(result, "list.json must hold a table of keys, not a list")
    assert not (tmp_path / "run").exists()
    assert TrainConfig.from_file(tmp_path / "cfg.json").steps == 3   # JSON is a config format


def test_a_seed_is_in_0_to_2_32_on_the_command_line_and_in_a_config(app, tmp_path):
    with pytest.raises(UserError, match=r"seed must be in \[0, 2\^32\)"):
        TrainConfig.from_dict({"data": "toy2d:moons", "seed": 2**32})
    result = train(app, tmp_path / "run", "--seed", "-1")
    assert result.exit_code == 2 and "Invalid value for '--seed'" in result.output
    assert not (tmp_path / "run").exists()
