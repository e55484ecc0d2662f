"""The VAE vs VAE/GAN comparison report: report.md and its figures, under the experiment folder.

    <results_dir>/<exp_name>/<env_name>/report.md
    <results_dir>/<exp_name>/<env_name>/report/reconstructions.png   held-out frames | VAE | VAE/GAN
                                              prior_samples.png     the same prior z decoded by each
                                              training_curves.png   CMA-ES runs of both, one plot

One table compares the world models built on the same rollouts: the vision models on the same
held-out frames (MSE, SSIM, sharpness, a linear probe from z to speed and on-road), the MDN-RNNs
(held-out NLL and its baseline), the controllers (score over evaluate_episodes real episodes) and
every stage's wall time. A cell whose stage has not run shows "-", and the report lists what is
missing.
"""

import json
import re

import numpy as np

from common.config import VISIONS, for_vision, with_values
from common.episodes import list_episodes
from common.errors import UserFacingError
from common.files import write_json_atomic, write_text_atomic
from common.layout import (
    best_controller_path,
    controller_dir,
    controller_log_path,
    experiment_dir,
    memory_metrics_path,
    model_path,
    record_dir,
    vision_dir,
)
from common.plots import image_rows, save_figure
from common.statistics import compare_runs, compare_scores, runs_summary
from stages.evaluation import best_evaluated, controller_evaluated, describe_scores, evaluation_scores
from stages.evolution import controller_trained, dream_config, real_steps_spent, training_curve
from stages.memory import memory_trained, prediction_pixel_errors, world_model_mismatch
from stages.vision import (
    held_out_frames,
    load_vision_model,
    probe_steps,
    reconstruct,
    reference_frames,
    vision_metrics,
    vision_trained,
)
from stages.vision_metrics import as_uint8

LABELS = {"vae": "VAE", "vaegan": "VAE/GAN"}
FIGURE_FRAMES = 8
MISSING = "-"
TIMES_FILE = "stage_times.json"


def stage_times(folder):
    """{stage: seconds} of folder/stage_times.json, which pipeline.py keeps ({} if there is none)."""
    path = folder / TIMES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def add_stage_time(folder, stage, seconds):
    times = stage_times(folder)
    times[stage] = times.get(stage, 0.0) + seconds
    write_json_atomic(folder / TIMES_FILE, times)


def write_report(config):
    """Write report.md and its figures for every trained vision model of the experiment; returns its path."""
    visions = [vision for vision in VISIONS if vision_trained(for_vision(config, vision), vision)]
    if not visions:
        raise UserFacingError(f"no trained vision model under {experiment_dir(config)}; run pipeline.py first")
    folder = experiment_dir(config)
    figures = folder / "report"
    training, held_out, frames = held_out_frames(config)
    probe, reference = probe_steps(config, training, held_out), reference_frames(config, training)
    models = {vision: load_vision_model(model_path(config, vision), config.z_size) for vision in visions}
    columns = {vision: _column(for_vision(config, vision), models[vision], frames, probe, reference)
               for vision in visions}
    save_figure(_reconstructions(models, frames), figures / "reconstructions.png")
    save_figure(_prior_samples(models, config), figures / "prior_samples.png")
    runs = [(LABELS[vision], *columns[vision]["curve"]) for vision in visions if columns[vision]["curve"]]
    if runs:
        save_figure(training_curve(runs), figures / "training_curves.png")
    text = _markdown(config, visions, columns, stage_times(record_dir(config)), bool(runs), len(frames),
                     len(list_episodes(record_dir(config))))
    path = folder / "report.md"
    write_text_atomic(path, text)
    missing = [f"{LABELS[vision]}: {row}" for vision in visions for row, value in columns[vision]["cells"].items()
               if value == MISSING]
    print(f"wrote {path} and its figures in {figures}" + (f"; missing: {', '.join(missing)}" if missing else ""))
    return path


def action_nll_cell(memory):
    """memory_metrics.json's shuffled-action losses as one cell."""
    usage = memory["action_usage"]
    return (f"{usage['losses']['real']['z_nll']:.4f} / {usage['losses']['shuffled']['z_nll']:.4f} "
            f"({usage['z_nll_gain']:+.4f})")


def action_response_cell(memory):
    """memory_metrics.json's held-action probes as one cell: per action, dream / real change."""
    actions = memory["action_usage"]["responses"]["actions"]
    return "; ".join(f"{name.replace('_', ' ')} {value['dream']:.4f} / {value['real_reconstructed']:.4f}"
                     for name, value in actions.items() if name != "coast")


def _column(config, model, frames, probe, reference):
    """One vision's cells {row: text}, its CMA-ES curve (log, (initial score, std)) or None, and its GIFs.
    Only outputs that are complete for the current config fill cells; the others show MISSING."""
    metrics = vision_metrics(model, frames, probe, reference)
    matching = memory_trained(config) and world_model_mismatch(config) is None  # M trained on this V's series
    memory = _read_json(memory_metrics_path(config)) if matching else None
    predictions = prediction_pixel_errors(config, model)
    folder = controller_dir(config)
    trained = controller_trained(config)
    best = _read_json(best_controller_path(config)) if trained else None
    log = _read_json(controller_log_path(config)) if trained else None
    evaluation = best_evaluated(config) if trained else None
    times = {**stage_times(vision_dir(config)), **stage_times(folder)}

    def seconds(stage):
        return f"{times[stage]:.0f} s" if stage in times else MISSING

    cells = {
        "reconstruction MSE (held-out frames)": f"{metrics['mse']:.5f}",
        "SSIM": f"{metrics['ssim']:.3f}",
        "sharpness (1.0 = as sharp as the frames)": f"{metrics['sharpness']:.3f}",
        "diversity of reconstructions / of prior samples (1.0 = as varied as the frames; ~0: collapsed)": (
            f"{metrics['diversity']:.3f} / {metrics['prior_diversity']:.3f}"),
        "spread of the latent means (1.0 = as wide as the prior)": f"{metrics['latent_spread']:.3f}",
        "Fréchet distance to real frames in a fixed random network's features: reconstructions / prior "
        "samples (the held-out frames themselves)": (f"{metrics['frechet_reconstruction']:.3g} / "
                                                 f"{metrics['frechet_prior']:.3g} ({metrics['frechet_real']:.3g})"),
        "two-sample test, a fresh classifier's held-out accuracy at telling them from real frames (0.5: it "
        "cannot): reconstructions / prior samples (the held-out frames themselves)": (
            f"{metrics['two_sample_reconstruction']:.3f} / {metrics['two_sample_prior']:.3f} "
            f"({metrics['two_sample_real']:.3f})"),
        "precision / recall in the same features (the share of samples among real frames / of real frames "
        "the samples cover): reconstructions / prior samples (the held-out frames themselves)": (
            " / ".join(f"{metrics[f'precision_{kind}']:.3f}, {metrics[f'recall_{kind}']:.3f}"
                       for kind in ("reconstruction", "prior")) + f" ({metrics['precision_real']:.3f}, "
            f"{metrics['recall_real']:.3f})" if "precision_prior" in metrics else MISSING),
        "prior samples that are static (sharper than 3x the sharpest real frame); their share of road pixels "
        "(the held-out frames')": (f"{metrics['prior_noise_share']:.3f}; {metrics['road_share_prior']:.3f} "
                                   f"({metrics['road_share_real']:.3f})" if "prior_noise_share" in metrics
                                   else MISSING),
        "latent dimensions where a sample of z is more signal than noise (std of mu > rms sigma), of z_size; "
        "median signal-to-noise": (f"{metrics['informative_dimensions']} of {config.z_size}; "
                                   f"{metrics['signal_to_noise']:.2f}"),
        "KL per frame (nats)": f"{metrics['kl_nats']:.1f}",
        "z -> speed: linear probe R² (held-out frames)": (f"{metrics['speed_r2']:.3f}" if "speed_r2" in metrics
                                                          else "no speed in the episodes"),
        "z -> on the road: probe accuracy (always the majority)": (
            f"{metrics['on_road_accuracy']:.3f} ({metrics['on_road_majority']:.3f})" if "speed_r2" in metrics
            else "no on_road in the episodes"),
        "MDN-RNN held-out NLL per latent dimension": f"{memory['val_z_nll']:.4f}" if memory else MISSING,
        "baseline z(t+1) = mu(t), same NLL": f"{memory['val_baseline_nll']:.4f}" if memory else MISSING,
        "M's use of the actions: held-out NLL with the real actions / shuffled in time (gain)": (
            action_nll_cell(memory) if memory and "action_usage" in memory else MISSING),
        "M's response to an action held 20 steps: frame change from coasting's, dream / real (V's "
        "reconstructions of the real frames)": (
            action_response_cell(memory) if memory and "responses" in memory.get("action_usage", {}) else MISSING),
        "MDN-RNN one-step prediction decoded, pixel MSE on held-out episodes (comparable across visions)": (
            f"{predictions['rnn']:.5f}" if predictions else MISSING),
        "the same, copying the last frame": f"{predictions['copy_last']:.5f}" if predictions else MISSING,
        "controller score over real episodes (fixed seeds): mean ± std (95% CI)": (
            describe_scores(evaluation) if evaluation else MISSING),
        "best controller: generation (0 = the initial mean) of all run": (f"{best['generation']} of {len(log)}"
                                                                           if best else MISSING),
        "real environment steps spent by CMA-ES (with its held-out tests; a dream run: its real tests)": (
            f"{real_steps_spent(best, log):,}" if log and best else MISSING),
        f"{'dream' if config.dream_env else 'held-out'} score of the initial mean (controller_num_test_episode)": (
            f"{best['initial_score']:.1f} ± {best['initial_score_std']:.1f}" if best else MISSING),
        "wall time: vision training": seconds("vision"),
        "wall time: series encoding": seconds("series"),
        "wall time: MDN-RNN training": seconds("rnn"),
        "wall time: controller training": seconds("controller"),
        "wall time: evaluation and GIFs": seconds("evaluation"),
    }
    dream = dream_cell(config)
    if dream is not None:  # a row only where a dream run exists
        cells[f"dream-trained controller ({controller_dir(dream_config(config)).name}/), scored in the real "
              "environment"] = dream
    runs = evaluated_runs(config)
    over_runs = runs_cell(runs)
    if over_runs is not None:  # a row only where several CMA-ES runs of this world model were evaluated
        cells["every finished, evaluated CMA-ES run (controller_seed k: mean score); over runs"] = over_runs
    curve = (log, (best["initial_score"], best["initial_score_std"])) if log and best else None
    scores = evaluation_scores(best_controller_path(config)) if evaluation else None
    return {"cells": cells, "curve": curve, "folder": vision_dir(config).name, "scores": scores, "runs": runs,
            "gifs": evaluation is not None, "learning": learning_summary(best, len(log)) if best else None}


def dream_cell(config):
    """The real score of the dream-trained controller in <vision>/controller_dream/ (whatever CMA-ES settings
    it ran with): over evaluate_episodes if evaluate.py scored it, else over the held-out episodes train.py
    played at the end of its dream run; with its wall time when pipeline.py ran it. None without one."""
    path = best_controller_path(dream_config(config))
    best = None if config.dream_env else _read_json(path)
    if not best or "real_score" not in best:
        return None
    evaluation = controller_evaluated(config, path, config.evaluate_episodes)
    seconds = stage_times(path.parent).get("controller")
    trained = f"; trained in {seconds:.0f} s" if seconds else ""
    if evaluation:
        return describe_scores(evaluation)[:-1] + f"{trained})"
    return (f"{best['real_score']:.1f} ± {best['real_score_std']:.1f} ({config.controller_num_test_episode} "
            f"held-out episodes; {best['score']:.1f} in the dream{trained})")


def evaluated_runs(config):
    """{controller_seed: per-episode scores} of every finished CMA-ES run of this world model and config
    that evaluate.py scored on evaluate_episodes (controller/ and the controller_seed<k>/ beside it; a
    tagged recipe variant, controller_<tag>/, is another recipe and is left out)."""
    first = controller_dir(with_values(config, controller_seed=0))
    pattern = re.compile(re.escape(first.name) + r"(?:_seed([1-9][0-9]*))?")
    runs = {}
    for folder in sorted(first.parent.glob(f"{first.name}*")):
        match = pattern.fullmatch(folder.name)
        run = with_values(config, controller_seed=int(match.group(1) or 0)) if match else None
        if run and controller_trained(run) and controller_evaluated(run, best_controller_path(run),
                                                                    config.evaluate_episodes):
            runs[run.controller_seed] = evaluation_scores(best_controller_path(run))[1]
    return dict(sorted(runs.items()))


def runs_cell(runs):
    """Each run's mean score (evaluated_runs), and over the runs: the mean of the run means, their
    sample std and the between-run 95% CI; None with fewer than two runs."""
    if len(runs) < 2:
        return None
    summary = runs_summary([scores.mean() for scores in runs.values()])
    listed = ", ".join(f"{seed}: {scores.mean():.1f}" for seed, scores in runs.items())
    return (f"{listed}; {summary['mean']:.1f} ± {summary['std']:.1f} (sample std of the run means; between-run "
            f"95% CI {summary['ci95'][0]:.1f} to {summary['ci95'][1]:.1f}) over {summary['runs']} runs")


def runs_comparison(first_runs, second_runs, first_label, second_label):
    """One sentence: two world models compared over their independent CMA-ES runs (evaluated_runs each,
    at least two): Welch's t-test on the run means and a hierarchical bootstrap (runs, then episodes)."""
    result = compare_runs(list(first_runs.values()), list(second_runs.values()))
    return (f"Over independent runs, {first_label} - {second_label}: {result['difference']:+.1f} (Welch's t on "
            f"the {len(first_runs)} and {len(second_runs)} run means: 95% CI {result['low']:+.1f} to "
            f"{result['high']:+.1f}, p = {result['p_t']:.3g}; hierarchical bootstrap over runs and episodes: "
            f"{result['bootstrap_low']:+.1f} to {result['bootstrap_high']:+.1f}, p = {result['p_bootstrap']:.3g}).")


def score_comparison(first, second, first_label, second_label):
    """One sentence: the difference of two world models' scores, (seeds, scores) each, its 95% CI and
    tests: paired ones when both played the same episode seeds (evaluate_episodes of one config)."""
    paired = len(first[0]) == len(second[0]) and bool(np.all(first[0] == second[0]))
    result = compare_scores(first[1], second[1], paired)
    tests = (f"paired t-test p = {result['p_t']:.3g}, Wilcoxon signed-rank p = {result['p_rank']:.3g}; the same "
             f"{len(first[1])} episode seeds" if paired else
             f"Welch's t-test p = {result['p_t']:.3g}, Mann-Whitney U p = {result['p_rank']:.3g}; "
             f"{len(first[1])} and {len(second[1])} episodes, not the same seeds")
    return (f"Score difference, {first_label} - {second_label}: {result['difference']:+.1f} (95% CI "
            f"{result['low']:+.1f} to {result['high']:+.1f}; {tests}).")


def learning_summary(best, generations):
    """One plain sentence on whether CMA-ES improved on its starting point, from best.json's details
    (generation 0: no held-out test of the mean beat the initial controller)."""
    if best["generation"] == 0:
        return (f"no held-out test of the CMA-ES mean in {generations} generations beat the initial controller "
                f"({best['initial_score']:.1f}): nothing was learnt at this scale, and the best controller is "
                "the initial one")
    return (f"the held-out score of the CMA-ES mean rose from {best['initial_score']:.1f} (the initial controller) "
            f"to {best['score']:.1f} (generation {best['generation']} of {generations})")


def _read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _reconstructions(models, frames):
    picks = frames[np.linspace(0, len(frames) - 1, FIGURE_FRAMES).astype(int)]
    rows = [("held-out", picks)] + [(LABELS[vision], reconstruct(model, picks)) for vision, model in models.items()]
    return image_rows(rows, title="held-out frames and their reconstructions")


def _prior_samples(models, config):
    """The same z ~ N(0, I) decoded by every model: what each has learned of the whole latent space."""
    z = np.random.default_rng(config.seed).standard_normal((FIGURE_FRAMES, config.z_size)).astype("float32")
    rows = [(LABELS[vision], as_uint8(model.decode(z))) for vision, model in models.items()]
    return image_rows(rows, title="decoded prior samples (the same z for each model)")


def _markdown(config, visions, columns, extract_times, curves, frame_count, episode_count):
    where = "the dream" if config.dream_env else "the real environment"
    collected = f" (collected in {extract_times['extract']:.0f} s)" if "extract" in extract_times else ""
    lines = [
        f"# World models compared: {', '.join(LABELS[vision] for vision in visions)}",
        "",
        f"Experiment `{config.exp_name}` on {config.env_name}; each stage folder holds the config it ran with. "
        f"Every model was built on the same {episode_count} rollouts in `record/`{collected}. "
        f"Vision metrics are on the same {frame_count} held-out frames; controllers were trained in {where} "
        f"(CMA-ES, population {config.controller_num_worker * config.controller_num_worker_trial}) and scored on "
        f"the same {config.evaluate_episodes} real episodes.",
        "",
        "| | " + " | ".join(LABELS[vision] for vision in visions) + " |",
        "|---|" + "---|" * len(visions),
    ]
    for row in dict.fromkeys(row for vision in visions for row in columns[vision]["cells"]):
        lines.append(f"| {row} | " + " | ".join(columns[vision]["cells"].get(row, MISSING) for vision in visions)
                     + " |")
    if len(visions) == 2 and all(columns[vision]["scores"] is not None for vision in visions):
        lines += ["", score_comparison(*(columns[vision]["scores"] for vision in visions), *map(LABELS.get, visions))]
    if len(visions) == 2 and all(len(columns[vision]["runs"]) >= 2 for vision in visions):  # the claim over runs
        lines += ["", runs_comparison(*(columns[vision]["runs"] for vision in visions), *map(LABELS.get, visions))]
    lines += ["", "## Reconstructions", "", "![reconstructions](report/reconstructions.png)", "",
              "## Decoded prior samples", "", "![prior samples](report/prior_samples.png)", ""]
    if curves:
        lines += ["## Controller training", ""]
        lines += [f"{LABELS[vision]}: {columns[vision]['learning']}.  " for vision in visions
                  if columns[vision]["learning"]]
        lines += ["", "![training curves](report/training_curves.png)", ""]
    lines += ["## The agents and their dreams", ""]
    for vision in visions:
        column = columns[vision]
        if column["gifs"]:
            base, label = f"{column['folder']}/{controller_dir(for_vision(config, vision)).name}", LABELS[vision]
            lines += [f"{label}: a real episode (frame | reconstruction | the MDN-RNN's prediction) and a dream "
                      "decoded by the vision model", "",
                      f"![{label} agent]({base}/best_agent.gif) ![{label} dream]({base}/best_dream.gif)", ""]
        else:
            lines += [f"{LABELS[vision]}: {MISSING} (no evaluated controller yet)", ""]
    return "\n".join(lines)
