"""``em-inverse bench SUITE --quick``: every suite runs in seconds and writes its reports."""
from __future__ import annotations

import csv
import time

import pytest
import torch
from typer.testing import CliRunner

from em_inverse.bench.images import fashion_available
from em_inverse.bench.tasks import fashion_tasks, natural_tasks

runner = CliRunner()


@pytest.fixture(scope="module")
def app():
    from em_inverse.cli.app import app

    return app


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(app, *args):
    start = time.perf_counter()
    result = runner.invoke(app, ["bench", *args, "--quiet"])
    return result, time.perf_counter() - start


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


QUALITY_METHODS = {"em-inverse MAP", "em-inverse posterior mean",
                   "deepinv PGD + prior (cross-check)", "tv (oracle)", "wiener (oracle)",
                   "nlm", "biharmonic", "bicubic"}


def test_natural_quick_writes_every_task_and_method(app, tmp_path):
    result, seconds = _run(app, "natural", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert seconds < 60
    for name in ("results.md", "results.csv", "psnr_bars.png", "examples_gray.png",
                 "examples_colour.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = _rows(tmp_path / "results.csv")
    assert {r["group"] for r in rows} == {"gray", "colour"}
    assert {r["task"] for r in rows} == {t.name for t in natural_tasks()}
    assert QUALITY_METHODS <= {r["method"] for r in rows}
    assert all(r["psnr"] and r["ssim"] for r in rows)
    table = (tmp_path / "results.md").read_text()
    assert "untrained prior (quick mode)" in table or "bundled natural-gray" in table
    assert "(oracle)" in table and "SSIM" in table and "Wall time" in table
    assert not list(tmp_path.glob("*.tmp")), "atomic writes leave no temporary files"


def test_fashion_quick_runs_or_skips_cleanly(app, tmp_path, monkeypatch):
    if not fashion_available():
        result, _ = _run(app, "fashion", "--quick", "--out", str(tmp_path))
        assert result.exit_code == 0
        assert not (tmp_path / "results.md").exists()
        pytest.skip("Fashion-MNIST t10k not installed")
    result, seconds = _run(app, "fashion", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert seconds < 60
    rows = _rows(tmp_path / "results.csv")
    assert {r["task"] for r in rows} == {t.name for t in fashion_tasks()}
    assert {"em-inverse MAP", "em-inverse posterior mean", "tv (oracle)"} <= \
        {r["method"] for r in rows}


def test_fashion_skips_without_the_data_set(app, tmp_path, monkeypatch):
    monkeypatch.setenv("EM_INVERSE_FASHION_DIR", str(tmp_path / "absent"))
    result, _ = _run(app, "fashion", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 0
    assert not (tmp_path / "results.md").exists()


def test_speed_quick_reports_every_measurement(app, tmp_path):
    result, seconds = _run(app, "speed", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert seconds < 60
    rows = _rows(tmp_path / "results.csv")
    assert {r["kind"] for r in rows} == {"grad", "solve", "chains", "ula"}
    assert {(r["channels"], r["size"]) for r in rows if r["kind"] == "grad"} == \
        {("1", "32"), ("1", "64"), ("3", "32"), ("3", "64")}
    assert all(0 < float(r["prior_share"]) <= 1.0 for r in rows if r["kind"] == "solve")
    assert all(r["peak_mib"] for r in rows if r["kind"] != "ula")
    assert {r["method"] for r in rows if r["kind"] == "ula"} == \
        {"em-inverse posterior (ULA)", "deepinv.sampling.ULA"}
    assert (tmp_path / "grad_time.png").exists() and (tmp_path / "chains.png").exists()
    assert "deepinv / ours" in (tmp_path / "results.md").read_text()


def test_calibration_quick_reports_coverage_and_reliability(app, tmp_path):
    result, seconds = _run(app, "calibration", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert seconds < 60
    rows = _rows(tmp_path / "results.csv")
    settings = {r["setting"] for r in rows}
    assert "natural denoise-25" in settings
    assert ("fashion inpaint-box" in settings) == fashion_available()
    at90 = [r for r in rows if float(r["level"]) == 0.9]
    assert all(0.0 <= float(r["coverage_gaussian"]) <= 1.0 for r in at90)
    assert (tmp_path / "reliability.png").exists()
    assert "corr(std, |error|)" in (tmp_path / "results.md").read_text()


def test_unknown_suite_is_a_clean_user_error(app, tmp_path):
    result, _ = _run(app, "everything", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown suite" in result.output
