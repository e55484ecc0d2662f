"""pipeline.py end to end on a tiny config for both vision models, and compare.py's report."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from scipy import stats

import compare
import pipeline
from common.config import ConfigError, for_vision
from common.episodes import check_episode
from common.layout import controller_dir, experiment_dir, record_dir, vision_dir
from common.progress import keras_verbosity, progress_bar
from conftest import SMOKE_CONFIG
from controller import load_controller, num_parameters, save_controller
from stages import report
from stages.agent import load_agent
from stages.evaluation import describe_scores, evaluation_scores, write_evaluation
from stages.memory import load_series, world_model_mismatch
from stages.report import (
    LABELS,
    MISSING,
    evaluated_runs,
    learning_summary,
    runs_cell,
    runs_comparison,
    score_comparison,
)

# One worker process: each one imports TensorFlow (~5 s of CPU); parallelism is tested in test_parallel.py.
TINY = ["--num_episodes", 3, "--max_frames", 30, "--min_frames", 5, "--num_workers", 1, "--vae_num_epoch", 1,
        "--validation_frames", 20, "--rnn_num_steps", 10, "--rnn_validation_every", 10, "--rnn_max_seq_len", 10,
        "--controller_num_worker", 2, "--controller_num_test_episode", 1, "--controller_max_generations", 1,
        "--evaluate_episodes", 2]


def run(tmp_path, *overrides):
    return pipeline.main(["-c", SMOKE_CONFIG, "--results_dir", tmp_path / "results", *TINY, *overrides])


def table_rows(report_text):
    return [line for line in report_text.splitlines() if line.startswith("| ") and not line.startswith("| |")]


def test_the_pipeline_builds_both_world_models_and_the_report_then_skips_what_is_complete(make_config, tmp_path):
    statuses = run(tmp_path, "--vision", "both")
    config = make_config(*TINY)
    assert [name for name, _, _ in statuses] == [
        "extract", "vae vision", "vaegan vision", "vae series", "vae MDN-RNN", "vae controller", "vae evaluation",
        "vaegan series", "vaegan MDN-RNN", "vaegan controller", "vaegan evaluation", "report"]
    assert all(status.startswith("done in") for _, status, _ in statuses[:-1])
    assert [check_episode(path, full=True).length for path in sorted(record_dir(config).glob("*.npz"))] == [30] * 3
    for vision in ("vae", "vaegan"):
        setting = for_vision(config, vision)
        agent = load_agent(setting)  # the vision model and the MDN-RNN load, with the config's sizes
        assert agent.rnn.z_size == config.z_size
        assert load_series(setting)["mu"].shape == (3, 30, config.z_size)
        folder = controller_dir(setting)
        parameters, best = load_controller(folder / "best.json", setting)
        assert np.isfinite(parameters).all() and best["vision"] == vision
        summary = json.loads((folder / "best_evaluation.json").read_text())
        assert summary["episodes"] == 2 and np.isfinite(summary["mean"])
        assert Image.open(folder / "best_agent.gif").n_frames == 30
        assert Image.open(folder / "best_dream.gif").n_frames > 1
        assert set(json.loads((folder.parent / "stage_times.json").read_text())) == {"vision", "series", "rnn"}
        assert set(json.loads((folder / "stage_times.json").read_text())) == {"controller", "evaluation"}
    report = experiment_dir(config) / "report.md"
    rows = table_rows(report.read_text())
    assert len(rows) == 28 and not any(f"| {MISSING} |" in row or row.endswith(f"{MISSING} |") for row in rows)
    cells = {row.split(" | ")[0][2:]: row.split(" | ")[1:] for row in rows}
    for column, vision in enumerate(("vae", "vaegan")):  # each column holds its own model's numbers
        folder = controller_dir(for_vision(config, vision))
        memory = json.loads((folder.parent / "memory_metrics.json").read_text())
        summary = json.loads((folder / "best_evaluation.json").read_text())
        assert cells["MDN-RNN held-out NLL per latent dimension"][column].strip(" |") == f"{memory['val_z_nll']:.4f}"
        gain = cells["M's use of the actions: held-out NLL with the real actions / shuffled in time (gain)"][column]
        assert f"({memory['action_usage']['z_nll_gain']:+.4f})" in gain
        usage = json.loads((folder.parent / "vision_metrics.json").read_text())  # the same held-out frames
        assert cells["KL per frame (nats)"][column].strip(" |") == f"{usage['kl_nats']:.1f}"
        score_cell = cells["controller score over real episodes (fixed seeds): mean ± std (95% CI)"][column]
        assert score_cell.strip(" |") == describe_scores(summary) and "95% CI" in score_cell
        best = json.loads((folder / "best.json").read_text())  # and one plain line on whether CMA-ES learnt
        line = f"{LABELS[vision]}: {learning_summary(best, config.controller_max_generations)}."
        assert line in report.read_text()
    scores = [evaluation_scores(controller_dir(for_vision(config, v)) / "best.json") for v in ("vae", "vaegan")]
    comparison = score_comparison(*scores, "VAE", "VAE/GAN")  # the two world models' scores tested, paired
    assert comparison in report.read_text() and "paired t-test" in comparison
    for figure in ("reconstructions", "prior_samples", "training_curves"):
        assert (report.parent / "report" / f"{figure}.png").stat().st_size > 0

    again = run(tmp_path, "--vision", "both")
    assert all(status == "complete, skipped" for _, status, _ in again[:-1])
    (controller_dir(for_vision(config, "vaegan")) / "best_dream.gif").unlink()
    redone = run(tmp_path, "--vision=both")
    assert [name for name, status, _ in redone if status.startswith("done")] == ["vaegan evaluation"]
    longer = run(tmp_path, "--vision", "vae", "--controller_max_generations", 2)  # CMA-ES trains on, then re-scores
    assert [name for name, status, _ in longer if status.startswith("done")] == ["vae controller", "vae evaluation"]
    assert longer[-1][0] == "vae evaluation" and len(longer) == 6  # no report for one vision model
    with pytest.raises(ConfigError, match="controller_sigma_init=0.1 there, 0.5 now"):
        run(tmp_path, "--vision", "vae", "--controller_sigma_init", 0.5)

    # After the quick run, more epochs: V trains on, the series is re-encoded, and the MDN-RNN and controller
    # of the old V are set aside (nothing deleted) and rebuilt: one consistent world model at the end.
    old_rnn = (vision_dir(config) / "rnn.keras").read_bytes()
    more = run(tmp_path, "--vision", "vae", "--controller_max_generations", 2, "--vae_num_epoch", 2)
    assert [name for name, status, _ in more if status.startswith("done")] == [
        "vae vision", "vae series", "vae MDN-RNN", "vae controller", "vae evaluation"]
    assert world_model_mismatch(make_config(*TINY, "--vae_num_epoch", 2)) is None
    [stale] = (vision_dir(config) / "stale").iterdir()
    assert (stale / "rnn.keras").read_bytes() == old_rnn  # set aside as it was
    assert (stale / "controller" / "best_evaluation.json").exists() and (stale / "rnn_checkpoint").is_dir()

    shutil.rmtree(vision_dir(for_vision(config, "vaegan")))  # compare.py reports what exists: the VAE alone
    report = compare.main(["-c", str(SMOKE_CONFIG), "--results_dir", str(tmp_path / "results"), *map(str, TINY)])
    assert table_rows(report.read_text())[0].count("|") == 3  # one column: the VAE


def test_the_pipeline_only_takes_both_for_vision():
    assert pipeline.take_vision_both(["-c", "x", "--vision", "both", "--seed", "1"]) == (
        ["-c", "x", "--seed", "1"], ["vae", "vaegan"])
    assert pipeline.take_vision_both(["--vision", "vaegan"]) == (["--vision", "vaegan"], None)
    with pytest.raises(SystemExit):
        pipeline.main(["-c", str(SMOKE_CONFIG), "--vision", "all"])


def test_the_report_says_plainly_whether_cma_es_learnt():
    stuck = learning_summary({"generation": 0, "initial_score": 63.9, "score": 63.9}, 2)
    assert "nothing was learnt at this scale" in stuck and "(63.9)" in stuck
    learnt = learning_summary({"generation": 5, "initial_score": -48.3, "score": 10.9}, 15)
    assert "rose from -48.3" in learnt and "to 10.9 (generation 5 of 15)" in learnt


def test_the_report_lists_every_finished_cma_es_run_and_their_spread(make_config, monkeypatch):
    config = make_config(*TINY, "--z_size", 4, "--rnn_size", 8)
    unfinished = {"controller_seed2"}  # CMA-ES has not run all its generations there (train_controller's check)
    monkeypatch.setattr(report, "controller_trained", lambda run: controller_dir(run).name not in unfinished)
    assert runs_cell(evaluated_runs(config)) is None  # no run yet
    seeds, rng = np.arange(2), np.random.default_rng(0)
    means = {}
    for controller_seed, other in ((0, {}), (1, {}), (3, {}), (2, {}), (2, {"--dream_env": 1}),
                                   (2, {"--controller_init": "dream"}), (1, {"--controller_tag": "mirrored"})):
        run_config = make_config(*TINY, "--z_size", 4, "--rnn_size", 8, "--controller_seed", controller_seed,
                                 *[item for pair in other.items() for item in pair])
        path = controller_dir(run_config) / "best.json"
        save_controller(path, rng.standard_normal(num_parameters(run_config)), run_config)
        mean = write_evaluation(run_config, path, seeds, rng.normal(500, 100, 2))["mean"]
        if controller_seed in (0, 1, 3) and not other:
            means[controller_seed] = mean
        if controller_seed == 0:
            assert runs_cell(evaluated_runs(config)) is None  # one run: no spread to show
    assert {path.name for path in controller_dir(config).parent.iterdir()} >= {
        "controller_seed2", "controller_dream_seed2", "controller_warm_seed2",
        "controller_mirrored_seed1"}  # none of them counts
    (controller_dir(config).parent / "controller_seedling").mkdir()  # not a run's folder
    values = np.array(list(means.values()))
    half_width = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    assert runs_cell(evaluated_runs(config)) == (
        f"0: {means[0]:.1f}, 1: {means[1]:.1f}, 3: {means[3]:.1f}; {values.mean():.1f} ± {values.std(ddof=1):.1f} "
        f"(sample std of the run means; between-run 95% CI {values.mean() - half_width:.1f} to "
        f"{values.mean() + half_width:.1f}) over 3 runs")
    path = controller_dir(make_config(*TINY, "--z_size", 4, "--rnn_size", 8, "--controller_seed", 3)) / "best.json"
    save_controller(path, np.zeros(num_parameters(config)), config)  # seed 3's controller changed since its scores
    assert runs_cell(evaluated_runs(config)).endswith("over 2 runs")


def test_two_world_models_are_compared_over_runs_by_welch_on_run_means():
    rng = np.random.default_rng(1)
    first = {seed: rng.normal(700 + 10 * seed, 100, 50) for seed in range(3)}
    second = {seed: rng.normal(600, 100, 50) for seed in range(2)}
    sentence = runs_comparison(first, second, "VAE", "VAE/GAN")
    welch = stats.ttest_ind([v.mean() for v in first.values()], [v.mean() for v in second.values()],
                            equal_var=False)
    difference = np.mean([v.mean() for v in first.values()]) - np.mean([v.mean() for v in second.values()])
    assert sentence.startswith(f"Over independent runs, VAE - VAE/GAN: {difference:+.1f}")
    assert f"the 3 and 2 run means: 95% CI {welch.confidence_interval().low:+.1f}" in sentence
    assert f"p = {welch.pvalue:.3g};" in sentence and "hierarchical bootstrap" in sentence


def test_the_dream_warm_start_trains_in_the_dream_before_the_real_environment(make_config):
    config = make_config(*TINY, "--controller_init", "dream")
    stages = {stage.name: stage.outputs for stage in pipeline.plan(config, ["vae"])}
    assert list(stages) == ["extract", "vae vision", "vae series", "vae MDN-RNN", "vae dream controller",
                            "vae controller", "vae evaluation"]
    assert stages["vae dream controller"].parent.name == "controller_dream"
    assert stages["vae controller"].parent.name == "controller_warm"


def test_progress_written_to_a_log_file_is_plain_lines(capsys):
    assert keras_verbosity() == 2  # pytest's captured stdout is not a terminal: one line per epoch
    with progress_bar(total=3, desc="demo", unit="step", mininterval=0, maxinterval=0) as bar:
        for step in range(3):
            bar.set_postfix(step=step, refresh=False)
            bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all("\r" not in line and "\x1b" not in line for line in lines)
    assert lines[-1].startswith("demo: 100%") and "3/3" in lines[-1]
