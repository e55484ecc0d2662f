"""Where every stage reads and writes: the output layout, in one place (docs/formats.md draws it).

    <results_dir>/<exp_name>/<env_name>/          experiment_dir
        record/                                   record_dir (record_name picks another folder)
        <vision>/                                 vision_dir: vae/ or vaegan/
            <vision>.keras                        model_path
            vision_metrics.json                   vision_metrics_path
            series.npz                            series_path
            rnn.keras, initial_z.json             rnn_path, initial_z_path
            memory_metrics.json                   memory_metrics_path
            controller[_dream|_warm][_envpool][_<tag>][_seed<k>]/   controller_dir
                checkpoint.pkl                    cma_checkpoint_path (CMA-ES's state, to resume)
                log.csv, log.json                 controller_log_path
                best.json                         best_controller_path
                best_evaluation[_envpool].csv/.json, best_scores[_envpool].png   evaluation_file, summary_path
                best_validation[_envpool].csv/.json, best_validation_scores[_envpool].png   (validation set)

A world model is its vision model and MDN-RNN files (world_model_files); world_model_key says which
files a process loaded, so it loads them again only when they change.
"""

from pathlib import Path


def experiment_dir(config):
    return Path(config.results_dir).resolve() / config.exp_name / config.env_name


def record_dir(config):
    return experiment_dir(config) / config.record_name


def vision_dir(config, vision=None):
    return experiment_dir(config) / (vision or config.vision)


def model_path(config, vision):
    return vision_dir(config, vision) / f"{vision}.keras"


def vision_metrics_path(config, vision=None):
    return vision_dir(config, vision) / "vision_metrics.json"


def series_path(config, vision=None):
    return vision_dir(config, vision) / "series.npz"


def rnn_path(config, vision=None):
    return vision_dir(config, vision) / "rnn.keras"


def initial_z_path(config):
    return vision_dir(config) / "initial_z.json"


def memory_metrics_path(config):
    return vision_dir(config) / "memory_metrics.json"


def world_model_files(config):
    """The files of the config's world model: its vision model and its MDN-RNN."""
    return [model_path(config, config.vision), rnn_path(config)]


def world_model_key(config, extra_files=()):
    """((path, modification time or None), ...) of the world model's files and `extra_files`: equal keys
    mean the same files, unchanged, so a process can keep what it loaded from them."""
    return tuple((str(path), path.stat().st_mtime_ns if path.exists() else None)
                 for path in [*world_model_files(config), *map(Path, extra_files)])


def controller_dir(config):
    """<vision>/controller_dream/ (dream_env), controller_warm/ (a real run from controller_init) or controller/;
    with env_backend=envpool, that name with _envpool (a run in the other simulator, beside gymnasium's);
    with controller_tag t, then _<t> (a recipe variant); with controller_seed k > 0, then _seed<k> (another
    CMA-ES run of the same world model)."""
    name = "controller_dream" if config.dream_env else "controller_warm" if config.controller_init else "controller"
    name += "_envpool" if config.env_backend == "envpool" else ""
    name += f"_{config.controller_tag}" if config.controller_tag else ""
    return vision_dir(config) / (f"{name}_seed{config.controller_seed}" if config.controller_seed else name)


def best_controller_path(config):
    """The best controller train.py writes for this config."""
    return controller_dir(config) / "best.json"


def cma_checkpoint_path(config):
    """CMA-ES's state after the last finished generation, from which train.py resumes."""
    return controller_dir(config) / "checkpoint.pkl"


def controller_log_path(config, extension="json"):
    """The CMA-ES run's per-generation log: log.json (read by the report) or log.csv (for people)."""
    return controller_dir(config) / f"log.{extension}"


def controller_path(config):
    """The controller the `controller` exploration policy drives with: extract_controller, or the
    config's best controller."""
    return Path(config.extract_controller) if config.extract_controller else best_controller_path(config)


# The two fixed sets of real episodes a controller is scored on after training: the test set (evaluate.py's
# default, the published scores) and the validation set (for choosing between settings); each names its
# files and draws its seeds from its own stream (agent.PURPOSES).
EPISODE_SETS = {"test": "evaluation", "validation": "validation"}


def evaluation_file(path, name, backend="gymnasium", episode_set="test"):
    """<stem>_<name> beside the controller file <stem>.json (name: evaluation.csv, evaluation.json or
    scores.png) for its scores on the test episodes in gymnasium's CarRacing, the judge; in envpool's,
    <stem>_evaluation_envpool.csv and so on, kept beside it; on the validation episodes, validation
    in place of evaluation (<stem>_validation.csv, <stem>_validation_scores.png)."""
    base, extension = name.rsplit(".", 1)
    if episode_set != "test":
        word = EPISODE_SETS[episode_set]
        base = base.replace("evaluation", word) if "evaluation" in base else f"{word}_{base}"
    suffix = "" if backend == "gymnasium" else f"_{backend}"
    return Path(path).with_name(f"{Path(path).stem}_{base}{suffix}.{extension}")


def summary_path(path, backend="gymnasium", episode_set="test"):
    """<name>_evaluation.json of the controller file <name>.json (see evaluation_file)."""
    return evaluation_file(path, "evaluation.json", backend, episode_set)
