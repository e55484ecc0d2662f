"""bench/sample_efficiency.py: the real steps a controller run spent, and the steps its world model's rollouts
took; bench/recipe_runs.py: recipes compared over their independent runs; bench/dream_runs.py: dream runs'
settings beside their dream and real scores."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from common.episodes import save_episode
from common.layout import evaluation_file
from common.statistics import mean_interval, runs_summary
from stages.evaluation import evaluation_scores

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import action_usage  # noqa: E402
import dream_runs  # noqa: E402
import recipe_runs  # noqa: E402
import sample_efficiency  # noqa: E402


def controller_run(folder, initial_steps=3000):
    folder.mkdir(parents=True)
    (folder / "best.json").write_text(json.dumps({"initial_score": -50.0, "initial_score_std": 10.0,
                                                  "initial_steps": initial_steps}))
    (folder / "log.csv").write_text("generation,steps,seconds,test_score,test_std\n"
                                    "1,16000,36,,\n2,20000,36,300.0,40.0\n3,16000,36,,\n")
    return folder


def test_real_steps_count_every_generation_and_generation_zeros_test(tmp_path):
    points = sample_efficiency.evaluations(controller_run(tmp_path / "controller"))
    assert [(steps, score) for steps, _, score, _ in points] == [(3000, -50.0), (3000 + 16000 + 20000, 300.0)]
    assert points[1][1] == 72 / 3600  # wall hours up to the evaluation


def test_rollout_steps_are_counted_beside_the_run_or_read_from_its_record(tmp_path):
    record = tmp_path / "exp" / "CarRacing-v3" / "record"
    record.mkdir(parents=True)
    for index, length in enumerate((5, 7)):
        save_episode(record / f"episode_{index:06d}.npz", np.zeros((length, 64, 64, 3), np.uint8),
                     np.zeros((length, 3)), np.zeros(length), np.arange(length) == length - 1, 100)
    run = controller_run(tmp_path / "exp" / "CarRacing-v3" / "vae" / "controller")
    assert sample_efficiency.rollouts_summary(run) == {"episodes": 2, "steps": 12}
    copy = controller_run(tmp_path / "docs" / "runs" / "a_run" / "controller")
    assert sample_efficiency.rollouts_summary(copy) is None
    (copy.parent / sample_efficiency.ROLLOUTS_FILE).write_text(json.dumps({"episodes": 2, "steps": 12}))
    assert sample_efficiency.rollouts_summary(copy) == {"episodes": 2, "steps": 12}


def write_validation(path, seeds, scores):
    """A best.json's validation scores as evaluate.py --validation writes them (per episode: seed, score)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    table = evaluation_file(path, "evaluation.csv", episode_set="validation")
    rows = [f"{index},{seed},{score}\n" for index, (seed, score) in enumerate(zip(seeds, scores, strict=True))]
    table.write_text("episode,seed,score\n" + "".join(rows))
    return path


def test_recipes_are_compared_over_their_runs_on_the_validation_episodes(tmp_path):
    rng, seeds = np.random.default_rng(0), np.arange(8) + 100
    runs = {recipe: [write_validation(tmp_path / f"{recipe}{run}" / "best.json", seeds, rng.normal(center, 50, 8))
                     for run in range(count)] for recipe, center, count in (("plain", 600, 3), ("mirrored", 700, 2))}
    text = recipe_runs.table([("plain", runs["plain"]), ("mirrored", runs["mirrored"])])
    means = {recipe: [np.mean(evaluation_scores(path, episode_set="validation")[1]) for path in paths]
             for recipe, paths in runs.items()}
    summary = runs_summary(means["plain"])
    assert (f"| plain | 3 | {', '.join(f'{mean:.1f}' for mean in means['plain'])} | {summary['mean']:.1f} "
            f"({summary['ci95'][0]:.1f} to {summary['ci95'][1]:.1f}) | {summary['std']:.1f} |") in text
    welch = stats.ttest_ind(means["mirrored"], means["plain"], equal_var=False)
    assert f"mirrored - plain, over runs: {np.mean(means['mirrored']) - np.mean(means['plain']):+.1f}" in text
    assert f"p = {welch.pvalue:.3g};" in text
    other = write_validation(tmp_path / "other" / "best.json", seeds + 1, rng.normal(600, 50, 8))
    with pytest.raises(SystemExit, match="other validation episodes"):
        recipe_runs.table([("plain", [runs["plain"][0], other])])


def test_the_published_recipe_search_is_regenerated_from_its_records():
    """docs/results.md's recipe table is what bench/recipe_runs.py prints from the validation records."""
    runs = Path(__file__).resolve().parents[1] / "docs" / "runs" / "laptop_vae_kl4"
    recipes = [("the laptop recipe in envpool", [runs / name / "best.json" for name in (
                   "controller_envpool", "controller_envpool_seed1", "controller_envpool_seed2")]),
               ("mirrored sampling", sorted(runs.glob("controller_envpool_mirrored*/best.json")))]
    assert len(recipes[1][1]) >= 2
    published = (runs.parents[1] / "results.md").read_text()
    assert recipe_runs.table(recipes) in published


def test_dream_runs_are_tabled_with_their_settings_and_real_scores(tmp_path):
    rng, seeds = np.random.default_rng(1), np.arange(6) + 100
    scores = rng.normal(-80.0, 5.0, 6)
    folder = write_validation(tmp_path / "wm" / "controller_dream" / "best.json", seeds, scores).parent
    (folder / "best.json").write_text(json.dumps({"dream": True, "score": 612.3, "generation": 40,
                                                 "real_score": -85.4, "real_score_std": 2.5}))
    (folder / "train.config").write_text("max_frames=1000\nrnn_temperature=1.15\ncontroller_num_worker=64\n"
                                         "controller_num_episode=4\ncontroller_max_generations=80\n")
    low, high = mean_interval(scores)
    row = (f"| wm/controller_dream | 1.15 | 0.0 | 1000 | 64 x 4 | 80 | 612.3 (generation 40) | -85.4 ± 2.5 | "
           f"{scores.mean():.1f} ± {scores.std(ddof=1):.1f} ({low:.1f} to {high:.1f}; 6) |")
    assert row in dream_runs.table([folder])  # a run made before dream_dropout and dream_max_frames existed
    (folder / "train.config").write_text((folder / "train.config").read_text() + "dream_dropout=0.1\n"
                                         "dream_max_frames=300\n")
    assert "| wm/controller_dream | 1.15 | 0.1 | 300 | 64 x 4 |" in dream_runs.table([folder])
    (folder / "behaviour.json").write_text(json.dumps([{"seed": 7, "score": 104.2, "tiles": "59/289", "steer": -0.04,
                                                        "abs_steer": 0.73, "gas": 0.01, "brake": 0.0, "speed": 9.9,
                                                        "on_road": 1.0}]))
    assert dream_runs.table([folder]).endswith(
        "- wm/controller_dream, validation episode 7: 104.2, tiles 59/289; steering -0.04 (|steering| 0.73), gas "
        "0.01, brake 0.00; speed 9.9, on the road 100% of the steps")
    (folder / "best.json").write_text(json.dumps({"score": 700.0, "generation": 3}))
    with pytest.raises(SystemExit, match="not a dream-trained controller"):
        dream_runs.table([folder])


def test_action_usage_is_tabled_as_dream_over_real_change(tmp_path):
    actions = {name: {"real": 0.03, "real_reconstructed": 0.02, "dream": 0.005, "real_reward": 8.0,
                      "dream_reward": 11.0} for name in ("steer_left", "steer_right", "gas", "brake", "coast")}
    actions["gas"]["dream"] = 0.03
    usage = {"losses": {"real": {"z_nll": -1.0}, "shuffled": {"z_nll": -0.99}}, "z_nll_gain": 0.01,
             "responses": {"starts": 8, "actions": actions}}
    (tmp_path / "memory_metrics.json").write_text(json.dumps({"action_usage": usage}))
    assert "| -1.0000 / -0.9900 (+0.0100) | 0.25 | 0.25 | 1.50 | 0.25 | 8.0 / 8.0; 11.0 / 11.0 | 8 |" in (
        action_usage.table([tmp_path]))
    (tmp_path / "memory_metrics.json").write_text(json.dumps({"val_z_nll": -1.0}))
    with pytest.raises(SystemExit, match="no action_usage"):
        action_usage.table([tmp_path])


def test_the_published_action_usage_table_is_regenerated_from_its_records():
    runs = Path(__file__).resolve().parents[1] / "docs" / "runs"
    published = (runs.parent / "results.md").read_text()
    assert action_usage.table([runs / name for name in ("laptop_vae_kl4", "laptop_dream", "laptop_dream_nodrop")]) in (
        published)


def test_the_published_dream_runs_are_regenerated_from_their_records():
    runs = Path(__file__).resolve().parents[1] / "docs" / "runs"
    published = (runs.parent / "results.md").read_text()
    folders = [runs / "laptop_dream" / "controller_dream", runs / "laptop_dream" / "controller_dream_no_dream_dropout",
               runs / "laptop_dream_nodrop" / "controller_dream"]
    assert dream_runs.table(folders) in published
