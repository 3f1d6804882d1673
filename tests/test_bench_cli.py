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


QUALITY_METHODS = {"em-inverse MAP", "em-inverse MAP (no symmetry)",
                   "em-inverse posterior mean", "deepinv PGD + prior (cross-check)",
                   "tv (oracle)", "wiener (oracle)", "nlm", "biharmonic", "bicubic"}


def test_natural_quick_writes_every_task_and_method(app, tmp_path):
    result, seconds = _run(app, "natural", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert seconds < 120  # 16 tasks x 2 groups: about 50 s on 2 cores
    for name in ("results.md", "results.csv", "psnr_bars.png", "examples_gray.png",
                 "examples_colour.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = _rows(tmp_path / "results.csv")
    assert {r["group"] for r in rows} == {"gray", "colour"}
    assert {r["task"] for r in rows} == {t.name for t in natural_tasks()}
    assert QUALITY_METHODS <= {r["method"] for r in rows}
    assert all(r["psnr"] and r["ssim"] for r in rows)
    ablated = {r["task"] for r in rows if r["method"] == "em-inverse MAP (no Anscombe)"}
    assert ablated == {"denoise-poisson-30"}  # the ablation of a Poisson rule, nowhere else
    ended = {r["task"] for r in rows if r["method"] == "em-inverse HQS (end at noise)"}
    assert ended == {t.name for t in natural_tasks()  # where the fixed end differs from it
                     if t.sigma > 0 and t.family != "denoise"}
    table = (tmp_path / "results.md").read_text()
    assert "untrained prior (quick mode)" in table or "bundled natural-gray" in table
    assert "(oracle)" in table and "SSIM" in table and "Wall time" in table
    assert "cpu_model" in table and "cpu_kernels" in table  # what float results depend on
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
    for sampler in ("posterior", "anneal"):  # both samplers, same budget
        assert f"natural denoise-25, {sampler}" in settings
        assert f"natural-inpaint inpaint-50, {sampler}" in settings
        assert (f"fashion inpaint-box, {sampler}" in settings) == fashion_available()
    at90 = [r for r in rows if float(r["level"]) == 0.9]
    assert all(0.0 <= float(r[column]) <= 1.0 for r in at90
               for column in ("coverage_predictive", "coverage_gaussian"))
    # the predictive interval is the wider one: it counts the few draws behind mean and std
    assert all(float(r["coverage_predictive"]) >= float(r["coverage_gaussian"]) for r in at90)
    assert (tmp_path / "reliability.png").exists()
    assert "corr(std, |error|)" in (tmp_path / "results.md").read_text()


def test_calibration_runs_only_the_chosen_groups_and_samplers(app, tmp_path):
    result, _ = _run(app, "calibration", "--quick", "--groups", "natural", "--methods", "anneal",
                     "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert {r["setting"] for r in _rows(tmp_path / "results.csv")} == {"natural denoise-25, anneal"}
    assert "--methods anneal --groups natural" in (tmp_path / "results.md").read_text()


def test_calibration_names_its_groups_and_samplers_on_a_typo(app, tmp_path):
    for option, wrong, known in (("--groups", "gray", "'fashion', 'natural', 'natural-inpaint'"),
                                 ("--methods", "mala", "'posterior', 'anneal'")):
        result, _ = _run(app, "calibration", "--quick", option, wrong, "--out", str(tmp_path))
        assert result.exit_code == 2
        assert f"unknown {option[2:-1]} '{wrong}': use {known}" in result.output
        assert not (tmp_path / "results.csv").exists()


def test_unknown_suite_is_a_clean_user_error(app, tmp_path):
    result, _ = _run(app, "everything", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown suite" in result.output


# -- selection, budget and ablation options ------------------------------------------------------
FEW = ("--quick", "--groups", "gray", "--methods", "em-inverse MAP,biharmonic")


def test_task_and_method_filters_keep_only_the_selection_and_the_same_y(app, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    result, _ = _run(app, "natural", *FEW, "--tasks", "inpaint-50", "--out", str(one))
    assert result.exit_code == 0, result.output
    rows = _rows(one / "results.csv")
    assert {r["group"] for r in rows} == {"gray"}
    assert {r["task"] for r in rows} == {"inpaint-50"}
    assert {r["method"] for r in rows} == {"measurement y", "em-inverse MAP", "biharmonic"}
    header = (one / "results.md").read_text()
    assert "--tasks inpaint-50" in header and "--groups gray" in header
    assert "2 chains x 12 Langevin steps" in header  # the budget is quoted
    result, _ = _run(app, "natural", *FEW, "--tasks", "denoise-15,inpaint-50", "--out", str(two))
    assert result.exit_code == 0, result.output

    def measured(path):
        return {r["psnr"] for r in _rows(path / "results.csv")
                if r["task"] == "inpaint-50" and r["method"] in ("measurement y", "biharmonic")}

    assert measured(one) == measured(two)  # a task's y does not depend on the selection


@pytest.mark.parametrize("option, value, valid", [
    ("--tasks", "denoise-25,deblur", "'inpaint-box'"),
    ("--methods", "MAP", "'em-inverse posterior mean'"),
    ("--groups", "grey", "'colour'")])
def test_unknown_names_are_a_clean_user_error_listing_the_valid_ones(app, tmp_path, option,
                                                                      value, valid):
    result, seconds = _run(app, "natural", "--quick", option, value, "--out", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "unknown" in result.output and valid in result.output
    assert seconds < 20 and not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize("args", [("speed", "--tasks", "denoise-25"),
                                  ("fashion", "--size", "64"),
                                  ("natural", "--extra-prior", "no-path")])
def test_misplaced_or_malformed_options_are_user_errors(app, tmp_path, args):
    result, _ = _run(app, *args, "--quick", "--out", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "not an option of the" in result.output or "LABEL=PATH" in result.output


def test_an_output_folder_that_cannot_be_written_fails_before_any_work(app, tmp_path):
    (tmp_path / "file").write_text("in the way")
    result, seconds = _run(app, "natural", "--quick", "--out", str(tmp_path / "file"))
    assert result.exit_code == 2 and "it is a file, not a folder" in result.stderr
    assert seconds < 5  # not after the suite has run


def test_extra_prior_adds_an_ablation_row_where_its_channels_fit(app, tmp_path):
    from em_inverse.bench.common import untrained_prior
    from em_inverse.priors import save_prior

    folder = save_prior(untrained_prior(1, None, seed=3, device=torch.device("cpu")),
                        tmp_path / "em-only")
    result, _ = _run(app, "natural", "--quick", "--tasks", "denoise-25", "--methods",
                     "em-inverse MAP", "--extra-prior", f"em-only={folder}", "--out",
                     str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "out" / "results.csv")
    for method in ("em-inverse MAP [em-only]", "em-inverse HQS [em-only]"):
        extra = [r for r in rows if r["method"] == method]
        assert [r["group"] for r in extra] == ["gray"] and extra[0]["psnr"], method
    text = (tmp_path / "out" / "results.md").read_text()
    assert "em-inverse MAP [em-only]" in text and "not run on 3-channel images" in text


def test_a_prior_for_other_channels_asks_for_groups(app, tmp_path):
    from em_inverse.bench.common import untrained_prior
    from em_inverse.priors import save_prior

    folder = save_prior(untrained_prior(1, None, seed=3, device=torch.device("cpu")),
                        tmp_path / "gray")
    result, _ = _run(app, "natural", "--quick", "--prior", str(folder), "--out",
                     str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "--groups" in result.output


def test_report_headers_credit_the_commit_a_run_started_at():
    """Priors and settings are read when a suite starts; a commit made while it runs (a long
    benchmark in the background) must not be credited with its numbers."""
    from em_inverse.bench.common import SuiteSettings, header

    settings = SuiteSettings(command="em-inverse bench speed")
    started = settings.commit
    settings.commit = "abc1234"  # as if HEAD moved on after the start
    text = header("Speed", settings, [])
    assert "(started at commit abc1234)" in text and started != "abc1234"
