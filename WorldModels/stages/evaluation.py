"""Score a trained controller in the real environment, and make GIFs of the agent and of its dream.

evaluate_controller writes, beside the controller file <name>.json:
    <name>_evaluation.csv    per episode: its seed and score
    <name>_evaluation.json   mean, std, min, max over the episodes, and what was evaluated (the
                             controller file's SHA-256 and the settings the scores depend on)
    <name>_scores.png        a histogram of the scores
in gymnasium's CarRacing (env_backend=gymnasium, the judge); in envpool's, the same files with _envpool
before the extension (<name>_evaluation_envpool.csv ...), so that neither replaces the other.
Episodes use fixed seeds (agent.episode_seeds(seed, "evaluate", ...)), so two controllers evaluated
with the same config meet the same tracks. Those are the test episodes, played once per final setting;
settings are chosen on the validation episodes (episode_set="validation": seeds of their own stream,
"validate", into <name>_validation.csv, <name>_validation.json and <name>_validation_scores.png).
evaluate_best (pipeline.py's last stage) does this for train.py's best.json with evaluate_episodes
test episodes, and adds best_agent.gif and best_dream.gif.
"""

import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from common.config import LEGACY_VALUES, settings_of
from common.errors import UserFacingError
from common.files import atomic_path, file_sha256, write_json_atomic, write_text_atomic
from common.layout import best_controller_path, evaluation_file, model_path, summary_path
from common.plots import save_figure
from common.statistics import mean_interval, sample_std
from controller import controller_features, linear_actions, load_controller
from stages.agent import episode_seeds, load_agent, load_dream, play_episodes
from stages.evolution import RealEpisodes, world_fingerprint
from stages.vision_metrics import as_uint8

GIF_SCALE = 2  # 64x64 frames are small on a screen
GIF_FRAME_MS = 50


def load_for_config(path, config, report=None):
    """A controller's parameters, checked against the config's sizes and vision model. With `report`
    (the entry scripts, once, before any work), a controller trained with other V and M files than the
    config's gets a one-line note: scoring it on another world model is an experiment, not an error."""
    parameters, document = load_controller(path, config)
    if document.get("vision", config.vision) != config.vision:
        raise UserFacingError(f"{path}: trained on the {document['vision']} world model; pass --vision "
                              f"{document['vision']}")
    trained_with = document.get("world_model")
    if report is not None and trained_with is not None:  # hashes V and M: not in every worker
        current = world_fingerprint(config)
        changed = sorted(name for name in current
                         if name != "controller_init" and trained_with.get(name) != current[name])
        if changed:
            report(f"note: {path} was trained with other {' and '.join(changed)} files than this config's; "
                   "its scores are those of this world model")
    return parameters


SEED_PURPOSES = {"test": "evaluate", "validation": "validate"}  # an episode set's seed stream (agent.PURPOSES)

# The settings a controller's scores depend on, besides its file and the world model.
EVALUATION_SETTINGS = settings_of("evaluation")


def controller_evaluated(config, path, episodes, episode_set="test"):
    """The summary of an evaluation of the controller file `path` over `episodes` episodes of `episode_set`
    with the config's settings, or None if there is none (or the file or the settings have changed since)."""
    try:
        summary = json.loads(summary_path(path, config.env_backend, episode_set).read_text())
    except (OSError, ValueError):
        return None
    wanted = {"controller_sha256": file_sha256(path), "episodes": episodes,
              **{key: getattr(config, key) for key in EVALUATION_SETTINGS}}
    return summary if all(summary.get(key, LEGACY_VALUES.get(key)) == value for key, value in wanted.items()) else None


def evaluate_controller(config, path, episodes, episode_set="test"):
    """Play `episodes` real episodes of `episode_set` (test: the evaluation episodes; validation: the
    episodes settings are chosen on) with the controller in `path`; write and return the summary."""
    path = Path(path)
    parameters = load_for_config(path, config)
    seeds = episode_seeds(config.seed, SEED_PURPOSES[episode_set], 0, episodes)
    real = RealEpisodes(config)
    try:
        scores, _ = real.scores(parameters[None], seeds)
    finally:
        real.close()
    return write_evaluation(config, path, seeds, scores[0], episode_set)


def write_evaluation(config, path, seeds, scores, episode_set="test"):
    """Write the evaluation files of the controller file `path` on `episode_set` (its scores, per episode
    seed, and their summary and histogram beside it); returns the summary."""
    episodes = len(scores)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["episode", "seed", "score"])
    writer.writerows([index, seed, score] for index, (seed, score) in enumerate(zip(seeds, scores, strict=True)))
    write_text_atomic(evaluation_file(path, "evaluation.csv", config.env_backend, episode_set), table.getvalue())
    summary = {"controller": str(path), "episode_set": episode_set, "episodes": episodes, "mean": float(scores.mean()),
               "std": sample_std(scores), "ci95": list(mean_interval(scores)) if episodes > 1 else None,
               "min": float(scores.min()), "max": float(scores.max()),
               "controller_sha256": file_sha256(path), **{key: getattr(config, key) for key in EVALUATION_SETTINGS}}
    write_json_atomic(summary_path(path, config.env_backend, episode_set), summary)
    title = f"{path.name} ({config.vision}, {config.env_backend}): {episodes} {episode_set} episodes"
    save_figure(score_histogram(scores, title), evaluation_file(path, "scores.png", config.env_backend, episode_set))
    return summary


def evaluation_scores(path, backend="gymnasium", episode_set="test"):
    """(seeds int64, scores float64), per episode, that evaluate_controller wrote for the controller file
    `path` (in the simulator `backend`, on `episode_set`)."""
    table = evaluation_file(path, "evaluation.csv", backend, episode_set)
    try:
        with table.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return np.array([int(row["seed"]) for row in rows]), np.array([float(row["score"]) for row in rows])
    except (OSError, KeyError, ValueError) as error:
        raise UserFacingError(f"{table}: no readable per-episode scores ({error}); run evaluate.py again") from None


def describe_scores(summary):
    """'mean ± std (95% CI low..high, N episodes)' of an evaluation summary."""
    interval = summary.get("ci95")
    interval_text = f"95% CI {interval[0]:.1f} to {interval[1]:.1f}, " if interval else ""
    return f"{summary['mean']:.1f} ± {summary['std']:.1f} ({interval_text}{summary['episodes']} episodes)"


def best_evaluated(config):
    """evaluate_best's summary if it is complete for the current best.json and config, else None."""

    path = best_controller_path(config)
    gifs = [path.with_name(f"best_{kind}.gif") for kind in ("agent", "dream")]
    # GIFs made before best.json last changed show another controller
    if not path.exists() or not all(gif.exists() and gif.stat().st_mtime >= path.stat().st_mtime for gif in gifs):
        return None
    return controller_evaluated(config, path, config.evaluate_episodes)


def evaluate_best(config):
    """Score train.py's best.json on evaluate_episodes real episodes and write best_agent.gif and
    best_dream.gif beside it; nothing is redone if that evaluation and the GIFs exist. Returns the summary."""

    path = best_controller_path(config)
    if not path.exists():
        raise UserFacingError(f"{path}: no trained controller; run train.py first")
    gifs = {"agent": path.with_name("best_agent.gif"), "dream": path.with_name("best_dream.gif")}
    summary = best_evaluated(config)
    if summary is not None:
        print(f"{path} is already evaluated: {summary['mean']:.1f} ± {summary['std']:.1f} over "
              f"{summary['episodes']} episodes; nothing to do")
        return summary
    summary = evaluate_controller(config, path, config.evaluate_episodes)
    parameters, seed = load_for_config(path, config), episode_seeds(config.seed, "evaluate", 0, 1)[0]
    real_episode_gif(config, parameters, gifs["agent"], seed)
    dream_gif(config, parameters, gifs["dream"], seed)
    print(f"{path}: {describe_scores(summary)}, min {summary['min']:.1f}, max {summary['max']:.1f}; scores "
          f"{evaluation_file(path, 'evaluation.csv', config.env_backend)}; "
          f"GIFs {gifs['agent']}, {gifs['dream']}")
    return summary


def score_histogram(scores, title):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axis = figure.subplots()
    axis.hist(scores, bins=min(30, max(5, len(scores) // 3)), color="C0")
    axis.axvline(np.mean(scores), color="C3", label=f"mean {np.mean(scores):.1f} ± {sample_std(scores):.1f}")
    axis.set_xlabel("score")
    axis.set_ylabel("episodes")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    return figure


# -- GIFs -------------------------------------------------------------------------------------

def decode_frames(vision_model, z, batch=256):
    """uint8 frames (n, 64, 64, 3) decoded from latents (n, z_size)."""
    z = np.asarray(z, np.float32)
    return np.concatenate([as_uint8(vision_model.decode(z[start:start + batch]))
                           for start in range(0, len(z), batch)])


def write_gif(path, columns):
    """An animated GIF of uint8 frame sequences (each (T, H, W, 3)) side by side, atomically."""
    length = min(len(frames) for frames in columns)
    separator = np.full((length, columns[0].shape[1], 2, 3), 255, np.uint8)
    pieces = [piece for frames in columns for piece in (frames[:length], separator)][:-1]
    strip = np.concatenate(pieces, axis=2)
    images = [Image.fromarray(frame).resize((frame.shape[1] * GIF_SCALE, frame.shape[0] * GIF_SCALE),
                                            Image.Resampling.NEAREST) for frame in strip]
    with atomic_path(path) as temporary:
        images[0].save(temporary, format="GIF", save_all=True, append_images=images[1:], duration=GIF_FRAME_MS,
                       loop=0)
    return path


def real_episode_gif(config, parameters, path, seed):
    """GIF of one real episode: the frame | the vision model's reconstruction | the frame decoded from
    the RNN's prediction of it made one step earlier. Returns the episode's score."""
    agent = load_agent(config)
    result = play_episodes(agent, config, parameters[None], [seed], trace=True)
    frames, z, predicted = result["frames"][0], result["z"][0], result["predicted"][0]
    reconstructions = decode_frames(agent.vision_model, z)
    # the first frame has no prediction: show its reconstruction there
    predictions = np.concatenate([reconstructions[:1], decode_frames(agent.vision_model, predicted[:-1])])
    write_gif(path, [frames, reconstructions, predictions])
    return float(result["scores"][0])


def dream_gif(config, parameters, path, seed):
    """GIF of one dream episode driven by the controller, decoded by the vision model. Returns its score."""
    from stages.vision import load_vision_model

    vision_model = load_vision_model(model_path(config, config.vision), config.z_size)
    dream = load_dream(config)
    latents, score, done = [dream.reset(1, seed)[0]], 0.0, False
    while not done:
        actions = linear_actions(controller_features(dream.z, dream.h, dream.c, config), parameters[None])
        reward, terminated, truncated = dream.step(actions)
        latents.append(dream.z[0])
        score, done = score + float(reward[0]), bool(terminated[0] or truncated[0])
    write_gif(path, [decode_frames(vision_model, np.stack(latents))])
    return score
