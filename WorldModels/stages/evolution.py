"""Train the controller C with CMA-ES (pycma), in the real environment or in the MDN-RNN's dream.

Outputs, under <vision>/controller/ (real), <vision>/controller_dream/ (dream_env=1) or
<vision>/controller_warm/ (real, started from controller_init's parameters, e.g. the dream's best:
the dream warm start), each with _seed<k> for another CMA-ES run (controller_seed=k), so these never
resume or overwrite each other:
    best.json            the best evaluated mean so far (controller.save_controller), with its score and
                         that of the initial mean; a dream-trained one also holds its real-env score
    log.csv, log.json    per generation: best, mean and worst fitness, sigma, env steps, seconds, and
                         the held-out score of the mean when it was evaluated
    training_curve.png   the log as a figure
    checkpoint.pkl       CMA-ES state and log, written atomically every generation: a rerun resumes
    train.config         the resolved config; a rerun with other settings is refused

Each generation, every candidate plays the same controller_num_episode episodes (seeds fixed per
generation, new each generation); its fitness is their mean (or min, controller_batch_mode) minus
the original's L2 penalty. Before the first generation (the initial mean, "generation 0"), every
controller_eval_steps generations and after the last, the mean of the distribution plays
controller_num_test_episode held-out episodes; best.json is the best of these.
"""

import csv
import io
import pickle
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.config import settings_match, settings_of, stage_folder, with_values
from common.errors import UserFacingError
from common.files import (
    file_sha256,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from common.layout import (
    best_controller_path,
    cma_checkpoint_path,
    controller_dir,
    controller_log_path,
    vision_dir,
    world_model_files,
)
from common.parallel import open_workers, run_tasks
from common.plots import save_figure
from common.progress import progress_bar
from common.statistics import sample_std
from controller import load_controller, num_parameters, reduce_scores, save_controller, weight_decay_penalty
from stages.agent import CMA_STREAM, episode_seeds, load_dream, play_dreams, score_episodes

SETTINGS = settings_of("controller")
LOG_FIELDS = ("generation", "best", "mean", "worst", "sigma", "steps", "seconds", "test_score", "test_std")


def dream_config(config):
    """The config of the dream run that controller_init=dream starts from: the same keys, in the dream."""
    return with_values(config, dream_env=True, controller_init="")


def warm_start_path(config):
    """The controller file whose parameters CMA-ES starts from (controller_init), or None for zeros."""
    if config.controller_init != "dream":
        return Path(config.controller_init) if config.controller_init else None
    return best_controller_path(dream_config(config))


def starting_mean(config):
    """CMA-ES's first mean (float32, P): zeros, or the parameters of the controller_init file."""
    path = warm_start_path(config)
    return np.zeros(num_parameters(config), np.float32) if path is None else load_controller(path, config)[0]


class RealEpisodes:
    """Scores controllers on real CarRacing episodes, with worker processes (or Ray tasks) that
    stay up between generations and load the world model once."""

    def __init__(self, config):
        self.config = config
        self.workers = open_workers(score_episodes, config)

    def scores(self, parameters, seeds, stall_steps=0):
        """(scores (n, len(seeds)), env steps) of every row of parameters (n, P) on every seed; episodes
        without a new tile for stall_steps steps end early (agent.play_episodes)."""
        pairs = [(row, column) for row in range(len(parameters)) for column in range(len(seeds))]
        chunks = [pairs[start:start + self.config.agent_batch_size]
                  for start in range(0, len(pairs), self.config.agent_batch_size)]
        tasks = [(self.config, np.stack([parameters[row] for row, _ in chunk]), [seeds[column] for _, column in chunk],
                  stall_steps) for chunk in chunks]
        chunk_of = {id(task): chunk for task, chunk in zip(tasks, chunks, strict=True)}  # run_tasks yields our tuples
        scores, steps = np.zeros((len(parameters), len(seeds))), 0
        for args, (chunk_scores, chunk_steps) in run_tasks(score_episodes, tasks, self.config,
                                                           name=lambda args: f"episodes of seeds {args[2]}",
                                                           report=tqdm.write, workers=self.workers):
            for (row, column), score in zip(chunk_of[id(args)], chunk_scores, strict=True):
                scores[row, column] = score
            steps += int(np.sum(chunk_steps))
        return scores, steps

    def close(self):
        self.workers.close()


class DreamEpisodes:
    """Scores controllers in the dream, all candidates and episodes in one batch in this process."""

    def __init__(self, config):
        self.dream, self.config = load_dream(config), config
        if not self.dream.rnn.predict_reward:
            raise UserFacingError(f"{vision_dir(config) / 'rnn.keras'}: dream_env=1 needs an MDN-RNN that predicts "
                                  "the reward; train it with rnn_r_pred=1 (and rnn_d_pred=1 for episode ends)")

    def scores(self, parameters, seeds, stall_steps=0):
        """As RealEpisodes.scores (a dream has no tiles: stall_steps is not used); the dreams of one call
        are all drawn from the stream of seeds[0]."""
        result = play_dreams(self.dream, self.config, parameters, len(seeds), seed=seeds[0])
        return result["scores"], int(result["steps"].sum())

    def close(self):
        pass


def world_fingerprint(config):
    """SHA-256 of the vision model and MDN-RNN files (and of the controller_init file): a controller is
    only resumed on the same world model, from the same start."""
    paths = world_model_files(config)
    for path in paths:
        if not path.exists():
            raise UserFacingError(f"{path}: missing; train the vision model and the MDN-RNN first")
    from stages.memory import check_world_model  # TensorFlow: not before a bad config is refused

    check_world_model(config)  # M trained on this V's series
    fingerprint = {path.name: file_sha256(path) for path in paths}
    start = warm_start_path(config)
    if start is not None:
        if not start.is_file():
            raise UserFacingError(f"{start}: no such file (controller_init={config.controller_init}); "
                                  + ("train in the dream first: train.py --dream_env 1" if config.controller_init
                                     == "dream" else "give an existing controller file"))
        fingerprint["controller_init"] = file_sha256(start)
    return fingerprint


def check_warm_start(config):
    """Before a new run from controller_init: the file loads for this config, and a dream run it comes
    from has finished (its best controller scored for real); raises UserFacingError naming what to do."""
    if config.controller_init == "dream" and not controller_trained(dream_config(config)):
        raise UserFacingError(f"{warm_start_path(config).parent}: the dream run is not finished; run train.py "
                              "--dream_env 1 (or pipeline.py, which trains it first) before controller_init=dream")
    starting_mean(config)


def controller_trained(config):
    """True if CMA-ES has run controller_max_generations on the current world model (and a dream-trained
    best controller has been scored in the real environment)."""
    path = cma_checkpoint_path(config)
    if not settings_match(path.parent, "train.py", config, SETTINGS):
        return False
    try:
        state = _restore(path, world_fingerprint(config))
    except UserFacingError:
        return False  # train_controller says what is wrong
    return (state is not None and "initial" in state and len(state["log"]) >= config.controller_max_generations
            and (not config.dream_env or "real_score" in state["best"]))


def controller_stale(config):
    """True if this config's CMA-ES checkpoint was made with another world model (or start) than the current one."""
    path = cma_checkpoint_path(config)
    if not path.exists():
        return False
    try:
        state = pickle.loads(path.read_bytes())
    except Exception:  # unreadable: train_controller says so
        return False
    return state.get("world") != world_fingerprint(config)


def train_controller(config):
    """Run CMA-ES up to controller_max_generations (resuming a killed run); returns best.json's content."""
    folder = controller_dir(config)
    fingerprint = world_fingerprint(config)  # before the folder is made: a missing file leaves nothing behind
    if config.controller_init and not cma_checkpoint_path(config).exists():
        check_warm_start(config)
    with stage_folder(folder, config, "train.py", SETTINGS):
        state = _restore(cma_checkpoint_path(config), fingerprint)
        if controller_trained(config):
            print(f"CMA-ES already ran {len(state['log'])} generations on this world model; nothing to do")
            _write_outputs(folder, config, state)  # as the checkpoint says (docs/formats.md, "Older folders")
            return _summarize(folder, config, state["best"])
        if state is None:
            state = _new_state(config, fingerprint)
        else:
            np.random.set_state(state["numpy_random"])  # pycma samples from numpy's global generator
        episodes = DreamEpisodes(config) if config.dream_env else RealEpisodes(config)
        where = "dream" if config.dream_env else "real environment"
        print(f"CMA-ES in the {where}: {num_parameters(config)} parameters, population {state['es'].popsize}, "
              f"{config.controller_num_episode} episodes per candidate; "
              + (f"resuming after generation {len(state['log'])}" if state["log"] else "starting"))
        try:
            if "initial" not in state:  # the starting point (where es started), every later score's reference
                initial = starting_mean(config)
                test, test_steps = _test(episodes, initial, config)
                state["initial"] = {"score": float(test.mean()), "score_std": sample_std(test), "generation": 0,
                                    "steps": test_steps, "parameters": initial}
                state["best"] = state["best"] or state["initial"]
                print(f"the initial mean scores {test.mean():.1f} ± {sample_std(test):.1f} on "
                      f"{config.controller_num_test_episode} held-out episodes ({test_steps} steps)")
                _save(folder, config, state)
            progress = progress_bar(range(len(state["log"]), config.controller_max_generations),
                                    desc=f"CMA-ES ({where})", unit="generation", initial=len(state["log"]),
                                    total=config.controller_max_generations)
            for generation in progress:
                row = _run_generation(state, episodes, config, generation)
                state["log"].append(row)
                _save(folder, config, state)
                progress.set_postfix(best=f"{row['best']:.1f}", mean=f"{row['mean']:.1f}",
                                     test=f"{state['best']['score']:.1f}", refresh=False)
            if config.dream_env and "real_score" not in state["best"]:
                _score_for_real(state["best"], config)
                _save(folder, config, state)
        finally:
            episodes.close()
    return _summarize(folder, config, state["best"])


def _new_state(config, fingerprint):
    """A fresh training state: CMA-ES at starting_mean, no log yet, and the world model's fingerprint."""
    import cma

    population = config.controller_num_worker * config.controller_num_worker_trial
    options = {"popsize": population, "seed": cma_seed(config), "verbose": -9}
    if config.controller_mirrored:  # every second candidate is the mirror image of the one before it
        options.update(CMA_mirrors=population // 2, CMA_mirrormethod=0)
    es = cma.CMAEvolutionStrategy(starting_mean(config).astype(np.float64), config.controller_sigma_init, options)
    return {"es": es, "log": [], "best": None, "world": fingerprint}


def cma_seed(config):
    """pycma's seed: seed + 1 for the first run (controller_seed 0, as before the key existed), and one
    drawn from a stream of its own for each other run; in 1 .. 2**32 - 1, as numpy takes no larger
    seed and pycma takes 0 as "from the clock"."""
    if not config.controller_seed:
        return config.seed + 1
    sequence = np.random.SeedSequence([config.seed, CMA_STREAM, 0, config.controller_seed])
    return int(sequence.generate_state(1)[0]) % (2**32 - 1) + 1


def training_seeds(config, generation):
    """The seeds of generation `generation`'s training episodes (controller_num_episode): each CMA-ES
    run (controller_seed) has its own."""
    return episode_seeds(config.seed, "train", generation, config.controller_num_episode, config.controller_seed)


def held_out_seeds(config):
    """The seeds of the held-out tests of the mean (controller_num_test_episode): the same for every
    CMA-ES run of a config, so runs are compared on the same episodes."""
    return episode_seeds(config.seed, "test", 0, config.controller_num_test_episode)


def _run_generation(state, episodes, config, generation):
    """One CMA-ES generation (ask, play, tell), and a held-out test of the mean when one is due, which
    may make it state["best"]. Returns the generation's log row."""
    started, es = time.monotonic(), state["es"]
    solutions = np.array(es.ask())
    scores, steps = episodes.scores(solutions, training_seeds(config, generation), config.controller_stall_steps)
    fitness = reduce_scores(scores, config.controller_batch_mode)
    penalized = fitness + weight_decay_penalty(solutions, config.controller_weight_decay)
    es.tell(list(solutions), list(-penalized))  # pycma minimises
    row = {"generation": generation + 1, "best": fitness.max(), "mean": fitness.mean(),
           "worst": fitness.min(), "sigma": es.sigma, "steps": steps, "test_score": "", "test_std": ""}
    last = generation + 1 == config.controller_max_generations
    if (generation + 1) % config.controller_eval_steps == 0 or last:
        test, test_steps = _test(episodes, np.asarray(es.mean, np.float32), config)
        row.update(test_score=float(test.mean()), test_std=sample_std(test))
        row["steps"] += test_steps
        if test.mean() > state["best"]["score"]:
            state["best"] = {"score": float(test.mean()), "score_std": sample_std(test),
                             "generation": generation + 1, "parameters": np.asarray(es.mean, np.float32)}
    row["seconds"] = time.monotonic() - started
    return row


def _score_for_real(best, config):
    """Add the real-environment score of a dream-trained best controller to it (held-out episodes)."""
    real = RealEpisodes(config)
    try:
        test, steps = _test(real, best["parameters"], config)
    finally:
        real.close()
    best.update(real_score=float(test.mean()), real_score_std=sample_std(test), real_steps=steps)


def _save(folder, config, state):
    """The outputs the state implies, then the checkpoint (with numpy's generator, which pycma samples from):
    last, so a run killed in between redoes the generation (same seeds, same draws) and writes them again."""
    state["numpy_random"] = np.random.get_state()
    _write_outputs(folder, config, state)
    write_bytes_atomic(cma_checkpoint_path(config), pickle.dumps(state))


def real_steps_spent(best, log):
    """Every real environment step a CMA-ES run took, from its best.json and log: in the real environment,
    its generations' episodes and held-out tests (log.csv's steps) and generation 0's held-out test
    (initial_steps; absent from runs made before it was recorded); in the dream, only the real tests of
    its best controller (real_steps)."""
    if best.get("dream"):
        return int(best.get("real_steps", 0))
    return int(best.get("initial_steps", 0)) + sum(int(row["steps"]) for row in log)


def _summarize(folder, config, best):
    """Print where the outputs are; return best.json's details (no parameters)."""
    summary = (f"best controller {best_controller_path(config)}: held-out score {best['score']:.1f} ± "
               f"{best['score_std']:.1f} ({'dream' if config.dream_env else 'real'}; generation {best['generation']})")
    if "real_score" in best:
        summary += f"; in the real environment {best['real_score']:.1f} ± {best['real_score_std']:.1f}"
    print(f"{summary}\nlog {controller_log_path(config, 'csv')}; figure {folder / 'training_curve.png'}")
    return {key: value for key, value in best.items() if key != "parameters"}


def _test(episodes, parameters, config):
    """(scores (1, controller_num_test_episode), steps) of one controller on the held-out seeds."""
    return episodes.scores(parameters[None], held_out_seeds(config))


def _restore(path, fingerprint):
    if not path.exists():
        return None
    try:
        state = pickle.loads(path.read_bytes())
    except Exception as error:  # a checkpoint is written atomically, so this is another program's doing
        raise UserFacingError(f"{path}: unreadable checkpoint ({error}); remove it to start afresh") from None
    if state["world"] != fingerprint:
        raise UserFacingError(f"{path}: made with another vision model, MDN-RNN or controller_init file than the "
                              "current ones; "
                              "remove this controller folder (or use another exp_name) to train afresh")
    return state


def _write_outputs(folder, config, state):
    """best.json, log.csv, log.json and training_curve.png from the training state."""
    best, log = state["best"], state["log"]
    save_controller(best_controller_path(config), best["parameters"], config, dream=bool(config.dream_env),
                    initial_score=state["initial"]["score"], initial_score_std=state["initial"]["score_std"],
                    **({"initial_steps": state["initial"]["steps"]} if "steps" in state["initial"] else {}),
                    world_model=state["world"],  # the SHA-256 of the V and M files (and start) it was trained with
                    **{key: value for key, value in best.items() if key not in ("parameters", "steps")})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(log)
    write_text_atomic(controller_log_path(config, "csv"), text.getvalue())
    write_json_atomic(controller_log_path(config), [{key: row[key] for key in LOG_FIELDS} for row in log])
    initial = (state["initial"]["score"], state["initial"]["score_std"])
    save_figure(training_curve([(("dream" if config.dream_env else "real") + f" ({config.vision})", log, initial)]),
                folder / "training_curve.png")


def training_curve(runs):
    """A figure of CMA-ES runs [(label, log rows, (score, std) of the initial mean)]: best, mean and worst
    fitness per generation, and the held-out score of the mean from generation 0 to where it was evaluated."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7, 4), layout="constrained")
    axis = figure.subplots()
    for index, (label, log, initial) in enumerate(runs):
        color = f"C{index}"
        generations = [row["generation"] for row in log]
        axis.plot(generations, [row["mean"] for row in log], color=color, label=f"{label}: mean fitness")
        axis.fill_between(generations, [row["worst"] for row in log], [row["best"] for row in log], color=color,
                          alpha=0.2, label=f"{label}: worst to best")
        tested = [row for row in log if row["test_score"] != ""]
        axis.errorbar([0] + [row["generation"] for row in tested], [initial[0]] + [row["test_score"] for row in tested],
                      yerr=[initial[1]] + [row["test_std"] for row in tested], fmt="o--", color=color, capsize=3,
                      label=f"{label}: held-out score of the mean (0: the initial mean)")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("generation")
    axis.set_ylabel("score (fitness)")
    axis.legend(fontsize=8)
    return figure
