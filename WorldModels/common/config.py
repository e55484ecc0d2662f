"""The one configuration loader used by every script.

A config file holds `key=value` lines (`#` starts a comment); every key can be overridden on the
command line as `--key value`. Each key is declared once in `KEYS` with its type and default
(the paper's setting), so an unknown key or a bad value is an error that names the key, and the
file and line it came from, before any work starts. `save_config` writes the resolved values as a
config file next to a stage's outputs, so `-c` on that file reproduces the run.
"""

import argparse
import contextlib
import importlib.util
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from common.errors import UserFacingError
from common.files import folder_lock, remove_stale_temporaries, write_text_atomic
from vaegan.options import DECODER_NORMALISATIONS, DECODERS, DISCRIMINATORS, GENERATOR_LOSSES, PASSES

# ---------------------------------------------------------------------------------------------
# Value types: each parses a string or raises ArgumentTypeError with a message naming the rule.

def _integer(low, high=None):
    def integer(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" + (f" and <= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {text!r}")
        return value
    return integer


def _number(low, high=None, low_inclusive=True):
    def number(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value < low if low_inclusive else value <= low
        if too_low or (high is not None and value > high) or not math.isfinite(value):
            bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be a number {bound}, got {text!r}")
        return value
    return number


def boolean(text):
    """1/0, true/false, yes/no (any case) -> bool; the TF2 port writes `full_episode=True`."""
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected 1/0 or true/false, got {text!r}")


def _choice(*options):
    def choice(text):
        if text not in options:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(options)}; got {text!r}")
        return text
    return choice


def _optional_name(text):
    """Empty, or a _name."""
    return text and _name(text)


def _name(text):
    """A non-empty string without path separators or spaces (it becomes a folder name)."""
    if not re.fullmatch(r"[^/\\\s#]+", text) or text in (".", ".."):
        raise argparse.ArgumentTypeError(f"must be a plain folder name (no /, spaces or #), got {text!r}")
    return text


def _folder(text):
    """A non-empty path without # (a saved config must read back the same), not a file nor under one."""
    if not text.strip() or "#" in text:
        raise argparse.ArgumentTypeError(f"must be a folder path without #, got {text!r}")
    for path in (Path(text), *Path(text).parents):
        if path.exists():
            if not path.is_dir():
                raise argparse.ArgumentTypeError(f"{text!r}: {path} is a file, not a folder")
            break
    return text


def _optional_file(text):
    """A file path without #, or empty (the script's default file)."""
    if "#" in text:
        raise argparse.ArgumentTypeError(f"must be a file path without #, got {text!r}")
    return text.strip()


positive_int, non_negative_int = _integer(1), _integer(0)
positive_float, non_negative_float = _number(0.0, low_inclusive=False), _number(0.0)


VISIONS = ("vae", "vaegan")  # the vision models: the VAE, and the VAE/GAN of Larsen et al.

# ---------------------------------------------------------------------------------------------
# Every key: name -> (type, default, help, outputs). Defaults are the paper's settings (configs/carracing).
# `outputs` names the outputs the key fixes (OUTPUTS below): a stage refuses to add to an output made with
# another value of one of its keys, and the pipeline does not count such an output as done.

class Key(NamedTuple):
    type: Callable[[str], Any]
    default: Any
    help: str
    outputs: tuple


OUTPUTS = {
    "rollouts": "the episode files of record/ (extract.py)",
    "vae": "the VAE (vae_train.py)",
    "vaegan": "the VAE/GAN (vaegan_train.py)",
    "rnn": "the MDN-RNN (rnn_train.py)",
    "controller": "a CMA-ES run and its best controller (train.py)",
    "evaluation": "a controller's scores on the evaluation episodes (evaluate.py)",
    "controller_shape": "the meaning of a controller file's parameters (its inputs and outputs)",
}


def _declare(entries):
    """{name: (type, default, help, "output output ...")} -> {name: Key}, checking each output's name."""
    keys = {}
    for name, (value_type, default, help_text, outputs) in entries.items():
        unknown = set(outputs.split()) - set(OUTPUTS)
        assert not unknown, f"KEYS[{name!r}] names unknown outputs {sorted(unknown)}"
        keys[name] = Key(value_type, default, help_text, tuple(outputs.split()))
    return keys


KEYS = _declare({
    # experiment and layout
    "exp_name": (_name, "WorldModels", "experiment name: outputs go to <results_dir>/<exp_name>/<env_name>/", ""),
    "env_name": (_choice("CarRacing-v3"), "CarRacing-v3", "gymnasium environment id (CarRacing-v3 only)",
                 "rollouts evaluation"),
    "env_backend": (_choice("gymnasium", "envpool"), "gymnasium", "simulator of the real environment in extract.py, "
                    "train.py and evaluate.py: gymnasium (the judge of every published score) or envpool (its C++ "
                    "port, 5-9x faster a step; its own tracks, a finished lap always ends an episode, and no speed "
                    "or on_road in episode files; docs/results.md says how far the two agree)",
                    "rollouts controller evaluation"),
    "fixed_track_tiles": (non_negative_int, 0, "real episodes only on tracks of exactly this many tiles, so a "
                          "tile always pays 1000 / N (Dropout's Dream Land: 289; a reset draws tracks from the "
                          "episode's seed until one fits; gymnasium only). 0: every track, the published judge's",
                          "rollouts controller evaluation"),
    "results_dir": (_folder, "results", "root folder of all outputs", ""),
    "seed": (non_negative_int, 0, "base seed: every episode, split and initialisation derives from it",
             "rollouts vae vaegan rnn controller evaluation"),
    "vision": (_choice(*VISIONS), "vae", "vision model the later stages use", "evaluation"),
    # rollouts (extract.py)
    "num_episodes": (positive_int, 10000, "number of rollouts to collect", ""),
    "max_frames": (positive_int, 1000, "maximum steps per episode", "rollouts controller evaluation"),
    "min_frames": (non_negative_int, 100, "shorter rollouts are discarded and collected again", "rollouts"),
    "full_episode": (boolean, True, "extract only: keep driving after a lap is finished, up to max_frames", "rollouts"),
    "record_name": (_name, "record", "folder of the rollouts under <results_dir>/<exp_name>/<env_name>/, which "
                    "extract.py writes and every later stage reads", ""),
    "extract_policy": (_choice("original", "controller", "brownian", "white", "linear"), "original",
                       "exploration policy of extract.py: original (random controller through the untrained "
                       "agent), controller (a trained one, with noise), brownian, white, linear "
                       "(bench/exploration_quality.py)", "rollouts"),
    "extract_original_scale": (positive_float, 0.01, "original policy: controller parameters ~ Cauchy * s, "
                               "s ~ U(0, this), drawn per episode", "rollouts"),
    "extract_controller": (_optional_file, "", "controller policy: its JSON file (default: the best.json "
                           "train.py writes for the same config); it drives through the config's world model",
                           "rollouts"),
    "extract_action_noise": (non_negative_float, 0.1, "controller policy: std of Gaussian noise added to the "
                             "controller's tanh outputs", "rollouts"),
    "extract_batch_size": (positive_int, 16, "original and controller policies: episodes a worker plays together "
                           "(episodes 0..b-1, b..2b-1, ...; an episode depends slightly on its batch)", "rollouts"),
    "extract_round": (non_negative_int, 0, "round of collection: round r >= 1 adds round<rr>_episode_*.npz to the "
                      "record folder (the paper's iterative procedure)", ""),
    "extract_brownian_dt": (positive_float, 0.02, "time step of the brownian policy: a += sqrt(dt) * N(0, 1)",
                            "rollouts"),
    "extract_linear_stdev": (positive_float, 0.01, "linear policy: weights ~ N(0, s^2) with s ~ U(0, this)",
                             "rollouts"),
    # workers (extract.py, train.py)
    "num_workers": (non_negative_int, 0, "parallel worker processes (0: one per CPU core)", ""),
    "backend": (_choice("local", "ray"), "local", "local worker processes, or Ray tasks for a cluster", ""),
    "ray_address": (str, "", "Ray cluster to join ('auto', 'ray://host:port'); empty starts a local instance", ""),
    "worker_timeout": (positive_float, 900.0, "seconds before a task is declared hung, killed and retried", ""),
    "worker_max_retries": (non_negative_int, 3, "times a failed task is retried before the run stops", ""),
    # vision (V)
    "z_size": (positive_int, 32, "size of the latent vector z", "vae vaegan rnn controller controller_shape"),
    "vae_batch_size": (positive_int, 100, "frames per training batch", "vae vaegan"),
    "vae_learning_rate": (positive_float, 0.0001, "Adam learning rate", "vae"),
    "vae_kl_tolerance": (non_negative_float, 0.5, "the VAE's KL is floored at vae_kl_tolerance * z_size (free "
                         "bits: nats the encoder spends at no cost)", "vae"),
    "vae_num_epoch": (positive_int, 10, "training epochs (of both vision models)", ""),
    "holdout_fraction": (_number(0.0, 0.5, low_inclusive=False), 0.05,
                         "fraction of episodes held out from training V and M (at least one)", "vae vaegan"),
    "validation_frames": (positive_int, 2000, "held-out frames for validation losses, figures and vision metrics", ""),
    "checkpoint_seconds": (positive_float, 600.0, "save a resumable checkpoint at least this often within an epoch",
                           ""),
    # VAE/GAN (batch size, epochs and z_size are the vae_* keys, so both train alike)
    "vaegan_kl_tolerance": (non_negative_float, 0.5, "the VAE/GAN's KL is floored at vaegan_kl_tolerance * z_size",
                            "vaegan"),
    "vaegan_learning_rate": (positive_float, 0.0003, "RMSProp learning rate of each network (the paper's)", "vaegan"),
    "vaegan_gamma": (non_negative_float, 1e-5, "weight of L_llike in the decoder's loss, against the GAN loss "
                     "(the authors' CelebA value)", "vaegan"),
    "vaegan_pixel_weight": (non_negative_float, 0.0, "weight of a pixel loss added to encoder and decoder (not "
                            "the paper's; 0 leaves it out)", "vaegan"),
    "vaegan_equilibrium": (positive_float, 0.68, "discriminator cross-entropy at balance (the authors' code)",
                           "vaegan"),
    "vaegan_margin": (non_negative_float, 0.35, "skip updates when a cross-entropy leaves equilibrium +- margin",
                      "vaegan"),
    "vaegan_feature_layer": (_integer(1, 4), 4, "discriminator convolution whose output is Dis_l (the authors': 4)",
                             "vaegan"),
    "vaegan_discriminator": (_choice(*DISCRIMINATORS), "larsen", "larsen: the authors' (batch normalisation, "
                             "a fully connected layer); strided: four plain stride-2 convolutions", "vaegan"),
    "vaegan_discriminator_width": (_number(0.0, 1.0, low_inclusive=False), 1.0,
                                   "scales the larsen discriminator's layer sizes (1: the authors')", "vaegan"),
    "vaegan_decoder": (_choice(*DECODERS), "larsen",
                       "larsen: the authors' generator (fully connected to 8x8x256, transposed convolutions, batch "
                       "normalisation); world_models: the ConvVAE's decoder", "vaegan"),
    "vaegan_decoder_width": (_number(0.0, 1.0, low_inclusive=False), 1.0,
                             "scales the larsen decoder's layer sizes (1: the authors')", "vaegan"),
    "vaegan_decoder_normalisation": (_choice(*DECODER_NORMALISATIONS), "batch",
                                     "the larsen decoder's normalisation: batch (the authors'; batch statistics in "
                                     "training, moving averages in use) or layer (per image: the same in both)",
                                     "vaegan"),
    "vaegan_real_label": (_number(0.5, 1.0, low_inclusive=False), 1.0, "discriminator's target for real frames "
                          "(1: the paper's; 0.9: one-sided label smoothing)", "vaegan"),
    "vaegan_generator_loss": (_choice(*GENERATOR_LOSSES), "minimax",
                              "decoder's GAN term: minimax -L_GAN (the paper's) or non_saturating -log Dis(fake)",
                              "vaegan"),
    "vaegan_passes": (_choice(*PASSES), "two", "two: L_llike and L_GAN from separate decoder passes (the "
                      "authors' code); one: one pass serves both (cheaper; batch statistics mixed with prior samples)",
                      "vaegan"),
    "vaegan_discriminator_learning_rate": (non_negative_float, 0.0, "the discriminator's own RMSProp learning rate "
                                           "(0: vaegan_learning_rate, the authors')", "vaegan"),
    "vaegan_r1_weight": (non_negative_float, 0.0, "R1 penalty on the discriminator's gradient at real frames, "
                         "weight/2 times the squared norm of grad_x logit (0: none, the authors')", "vaegan"),
    # memory (M)
    "rnn_num_steps": (positive_int, 4000, "training steps", ""),
    "rnn_max_seq_len": (positive_int, 1000, "length of the training sequences", "rnn"),
    "rnn_size": (positive_int, 256, "LSTM units", "rnn controller controller_shape"),
    "rnn_batch_size": (positive_int, 100, "sequences per batch", "rnn"),
    "rnn_grad_clip": (positive_float, 1.0, "clip every gradient value to [-c, c] (Keras clipvalue; the original "
                      "clips values, not the norm)", "rnn"),
    "rnn_num_mixture": (positive_int, 5, "Gaussians per latent dimension in the MDN", "rnn"),
    "rnn_learning_rate": (positive_float, 0.001, "Adam learning rate", "rnn"),
    "rnn_decay_rate": (_number(0.0, 1.0, low_inclusive=False), 1.0, "learning rate decay per step", "rnn"),
    "rnn_min_learning_rate": (non_negative_float, 0.00001, "floor of the decayed learning rate", "rnn"),
    "rnn_r_pred": (boolean, False, "also predict the reward", "rnn"),
    "rnn_d_pred": (boolean, False, "also predict done", "rnn"),
    "rnn_d_true_weight": (positive_float, 1.0, "loss weight of the rare done=True steps", "rnn"),
    "rnn_dropout": (_number(0.0, 0.9), 0.0, "variational dropout while M trains (Dropout's Dream Land: 0.05): one "
                    "mask per training sequence on the latent inputs and on the hidden state, never on the actions "
                    "(0: none, the original)", "rnn"),
    "rnn_temperature": (positive_float, 1.0, "sampling temperature tau of the MDN", "controller"),
    "dream_max_frames": (non_negative_int, 0, "length of a dream episode, in steps (0: max_frames, as a real "
                         "episode)", "controller"),
    "dream_dropout": (_number(0.0, 0.9), 0.0, "dropout in the dream (Dropout's Dream Land: 0.1): a fresh mask on M's "
                      "latent input and hidden state for every dream episode, fixed within it; the real agent never "
                      "drops (0: none, the original)", "controller"),
    "rnn_validation_every": (positive_int, 200, "training steps between validations, checkpoints and figures", "rnn"),
    "action_probe_starts": (non_negative_int, 8, "start states of the held-action probe of M in memory_metrics.json "
                            "(each probe action held 20 steps in the real env and in the dream, from the same "
                            "state); 0: only the held-out NLL with time-shuffled actions", ""),
    # controller (C)
    "dream_env": (boolean, False, "train the controller in the MDN-RNN's dream instead of the real env", "controller"),
    "exp_mode": (_choice("z", "zh"), "zh", "controller input: z only, or z and the RNN hidden state h",
                 "controller evaluation controller_shape"),
    "state_space": (_integer(1, 2), 1, "with exp_mode=zh: 1 uses h, 2 uses h and the cell state c",
                    "controller evaluation controller_shape"),
    "controller_optimizer": (_choice("cma"), "cma", "evolution strategy (pycma's CMA-ES)", "controller"),
    "controller_num_episode": (positive_int, 16, "episodes per candidate per generation", "controller"),
    "controller_num_test_episode": (positive_int, 1024, "episodes of each evaluation of the mean", "controller"),
    "controller_eval_steps": (positive_int, 25, "evaluate the mean every this many generations", "controller"),
    "controller_num_worker": (positive_int, 64, "CMA-ES's population size (times controller_num_worker_trial; "
                              "the original's name: not a number of processes, which is num_workers)", "controller"),
    "controller_num_worker_trial": (positive_int, 1, "population = controller_num_worker * this", "controller"),
    "controller_mirrored": (boolean, False, "mirrored (antithetic) sampling: candidates come in pairs mean +- d "
                            "(pycma's unconditional mirrors, population/2 of them; needs an even population). "
                            "No fitness-shaping key: CMA-ES uses only the ranks of the fitness", "controller"),
    "controller_sigma_init": (positive_float, 0.1, "initial CMA-ES step size", "controller"),
    "controller_stall_steps": (non_negative_int, 0, "a training episode in the real env ends after this many "
                               "steps without a new tile, charged the -0.1 a step it would still pay (0: full "
                               "episodes; held-out tests and evaluate.py always play full episodes)", "controller"),
    "controller_batch_mode": (_choice("mean", "min"), "mean", "reduction of a candidate's episode scores",
                              "controller"),
    "controller_max_generations": (positive_int, 2000, "CMA-ES generations (our budget; the paper states none); a "
                                   "rerun with more trains on from the last one", ""),
    "controller_init": (_optional_file, "", "CMA-ES's starting mean: empty for zeros (the original's), a controller "
                        "JSON file, or `dream` for <vision>/controller_dream/best.json (the dream warm start; "
                        "pipeline.py trains it first). A real run so started has its own folder, "
                        "<vision>/controller_warm/", "controller"),
    "controller_seed": (non_negative_int, 0, "another CMA-ES run of the same world model, for the run-to-run "
                        "spread: it seeds CMA-ES and the training episodes, in folders of its own "
                        "(<vision>/controller_seed<k>/, controller_dream_seed<k>/, controller_warm_seed<k>/; 0: "
                        "the first run's); held-out tests and evaluate.py keep seed's episodes, so runs can "
                        "be compared episode by episode", "controller"),
    "controller_tag": (_optional_name, "", "a name for a recipe variant (other controller settings on the same "
                       "world model): its runs go to <vision>/controller[_envpool]_<tag>[_seed<k>]/, beside the "
                       "untagged runs of the config's own recipe (empty: none)", ""),
    "controller_weight_decay": (non_negative_float, 0.01,
                                "L2 penalty: weight_decay * mean(params^2) is taken from the fitness (the original)",
                                "controller"),
    "controller_z": (_choice("sample", "mean"), "sample",
                     "the agent's z: sampled from N(mu, exp(logvar)) as the original, or the mean",
                     "controller evaluation"),
    "agent_batch_size": (positive_int, 16, "episodes one worker plays in lockstep, batching the agent's networks", ""),
    "evaluate_episodes": (positive_int, 100, "test episodes (fixed seeds) evaluate.py and pipeline.py score "
                          "the best controller on: the published scores, played once per final setting", ""),
    "validation_episodes": (positive_int, 32, "validation episodes (fixed seeds of their own, never used for "
                            "training, held-out tests or the test score) evaluate.py --validation scores a "
                            "controller on, to choose between settings", ""),
})


def settings_of(output):
    """The keys (in KEYS' order) whose values fix `output`, one of OUTPUTS: changing one of them makes
    an existing output of that kind belong to other settings."""
    if output not in OUTPUTS:
        raise KeyError(f"unknown output {output!r}; one of {', '.join(OUTPUTS)}")
    return tuple(key for key, spec in KEYS.items() if output in spec.outputs)


# A saved config without one of these keys is compared as if it held this value (docs/formats.md, "Older folders").
LEGACY_VALUES = {"env_backend": "gymnasium", "controller_stall_steps": 0, "controller_init": "", "controller_seed": 0,
                 "vaegan_discriminator": "strided", "vaegan_discriminator_width": 1.0,
                 "vaegan_generator_loss": "minimax", "vaegan_real_label": 1.0, "vaegan_decoder": "world_models",
                 "vaegan_decoder_width": 1.0, "vaegan_passes": "one", "vaegan_discriminator_learning_rate": 0.0,
                 "vaegan_r1_weight": 0.0, "vaegan_decoder_normalisation": "batch", "rnn_dropout": 0.0,
                 "dream_dropout": 0.0, "fixed_track_tiles": 0,
                 "dream_max_frames": 0}
# A saved config without the key holds the value of the key it was split from.
LEGACY_SOURCES = {"vaegan_kl_tolerance": "vae_kl_tolerance"}


class ConfigError(UserFacingError):
    """A config file or value that cannot be used; the message names the key and where it came from."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line that names the key, not argparse's usage block of fifty options.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# The headings of docs/configuration.md: (title, first key of the section), in KEYS' order.
KEY_SECTIONS = (("Experiment and layout", "exp_name"), ("Rollouts (extract.py)", "num_episodes"),
                ("Workers (extract.py, train.py, evaluate.py)", "num_workers"), ("Vision (V)", "z_size"),
                ("VAE/GAN (batch size, epochs and z_size are the vae_* keys)", "vaegan_kl_tolerance"),
                ("Memory (M)", "rnn_num_steps"), ("Controller (C)", "dream_env"))
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"
REFERENCE_CONFIGS = ("laptop", "smoke")


def configuration_reference():
    """The text of docs/configuration.md: every key of KEYS with its default (the paper's setting, as in
    configs/carracing.config), its value in the laptop and smoke configs, and its help."""
    configs = {name: read_config_file(CONFIGS_DIR / f"{name}.config") for name in REFERENCE_CONFIGS}
    starts = {key: title for title, key in KEY_SECTIONS}

    def shown(value):
        text = str(int(value)) if isinstance(value, bool) else str(value)
        return f"`{text}`" if text else "(empty)"

    lines = ["# Configuration keys", "",
             "Generated from `WorldModels/common/config.py` (its `KEYS` table, which `--help` shows too) by "
             "`python docs/make_configuration.py`; a test fails when this file and the code differ.", "",
             "A config file holds `key=value` lines (`#` starts a comment); any key can be overridden on the "
             "command line as `--key value`. An unknown key or a bad value is an error that names it before any "
             "work starts. The default is the paper's setting (`configs/carracing.config` holds exactly these); "
             "the laptop and smoke columns are those configs' values, shown in bold where they differ. "
             "*Fixes* names the outputs a key's value is part of: a stage refuses to add to such an output made "
             "with another value (change `exp_name` or remove the folder), and the pipeline does not count it "
             "as done.", "",
             *(f"- `{output}`: {meaning}" for output, meaning in OUTPUTS.items())]
    for key, spec in KEYS.items():
        if key in starts:
            lines += ["", f"## {starts[key]}", "", "| key | default (paper) | laptop | smoke | fixes | meaning |",
                      "|---|---|---|---|---|---|"]
        values = [shown(configs[name][key]) for name in REFERENCE_CONFIGS]
        values = [value if value == shown(spec.default) else f"**{value}**" for value in values]
        fixes = ", ".join(spec.outputs) or "-"
        meaning = spec.help.replace("|", "/").replace("<", "\\<")  # not a table cell's end, not an HTML tag
        lines.append(f"| `{key}` | {shown(spec.default)} | " + " | ".join(values) + f" | {fixes} | {meaning} |")
    return "\n".join(lines) + "\n"


def read_config_file(path):
    """Read a `key=value` file into {key: typed value}; raise ConfigError naming the file, line and key."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a text config file ({error.reason} at byte {error.start})") from None
    return read_config_text(text, source=path)


def read_config_text(text, source):
    """Parse `key=value` lines into {key: typed value}; errors name `source`, the line and the key."""
    values, line_of = {}, {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", line).strip()  # a comment starts at a # after a space
        if not line:
            continue
        key, equals, value_text = (part.strip() for part in line.partition("="))
        if not equals or not key:
            raise ConfigError(f"{source}:{number}: expected key=value, got {line!r}")
        if key not in KEYS:
            raise ConfigError(f"{source}:{number}: unknown key '{key}'")
        if key in values:
            raise ConfigError(f"{source}:{number}: key '{key}' is already set on line {line_of[key]}")
        try:
            values[key], line_of[key] = KEYS[key].type(value_text), number
        except argparse.ArgumentTypeError as error:
            raise ConfigError(f"{source}:{number}: key '{key}': {error}") from None
    return values


def _join_negative_values(argv):
    """`--key -1e-4` as `--key=-1e-4`: argparse takes a value such as -1e-4 for an option and says "expected
    one argument"; joined, the key's own check says what is wrong with it."""
    joined, index = [], 0
    while index < len(argv):
        argument = str(argv[index])
        value = str(argv[index + 1]) if index + 1 < len(argv) else ""
        if argument.startswith("--") and "=" not in argument and value.startswith("-") and _is_number(value):
            joined.append(f"{argument}={value}")
            index += 2
        else:
            joined.append(argument)
            index += 1
    return joined


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_config(argv=None, description=None, add_arguments=None):
    """Parse `-c FILE` and `--key value` overrides into an argparse.Namespace of typed values.

    add_arguments(parser), if given, adds a script's own arguments (such as a positional path).
    Errors print one line naming the key and exit with status 2.
    """
    argv = _join_negative_values(sys.argv[1:] if argv is None else list(argv))
    parser = _Parser(description=description, allow_abbrev=False,
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-c", "--config", help="config file of key=value lines")
    for key, spec in KEYS.items():
        parser.add_argument(f"--{key}", type=spec.type, default=spec.default, help=spec.help)
    if add_arguments is not None:
        add_arguments(parser)
    # The file first (so that --help shows its values), then the command line over it.
    config_only = _Parser(add_help=False, allow_abbrev=False)
    config_only.add_argument("-c", "--config")
    config_path = config_only.parse_known_args(argv)[0].config
    if config_path:
        try:
            parser.set_defaults(**read_config_file(config_path))
        except ConfigError as error:
            parser.error(str(error))
    config = parser.parse_args(argv)
    population = config.controller_num_worker * config.controller_num_worker_trial
    if config.controller_mirrored and population % 2:
        parser.error(f"argument --controller_mirrored: mirrored sampling pairs the candidates, so the population "
                     f"(controller_num_worker * controller_num_worker_trial = {population}) must be even")
    if config.min_frames > config.max_frames:
        parser.error(f"argument --min_frames: must be <= max_frames ({config.max_frames}), got {config.min_frames}")
    if config.env_backend == "envpool" and importlib.util.find_spec("envpool") is None:
        parser.error("argument --env_backend: envpool is not installed (it has wheels for Linux and Python >= 3.11 "
                     "only: pip install envpool); use env_backend=gymnasium")
    if config.dream_env and config.controller_init == "dream":
        parser.error("argument --controller_init: a dream run (dream_env=1) cannot start from the dream's own "
                     "controller; use controller_init=dream with dream_env=0")
    return config


def config_values(config):
    """The declared keys of a parsed config, in declaration order, as a dict."""
    return {key: getattr(config, key) for key in KEYS}


def save_config(config, path):
    """Write the resolved config as a loadable `key=value` file, atomically; returns the path."""
    lines = ["# resolved configuration of this run; reproduce it with -c this file"]
    for key, value in config_values(config).items():
        lines.append(f"{key}={int(value) if isinstance(value, bool) else value}")
    write_text_atomic(path, "\n".join(lines) + "\n")
    return Path(path)


def check_same_settings(saved_path, config, keys):
    """Raise ConfigError if a previous run's saved config differs from `config` on any of `keys`.

    Used before adding to existing outputs, so that one folder never mixes two settings.
    """
    written = read_config_file(saved_path)
    saved = {**LEGACY_VALUES, **{key: written[source] for key, source in LEGACY_SOURCES.items() if source in written},
             **written}
    changed = [f"{key}={saved[key]!r} there, {getattr(config, key)!r} now"
               for key in keys if key in saved and saved[key] != getattr(config, key)]
    if changed:
        others = ("another record_name (or extract_round, to add a round), exp_name or results_dir"
                  if Path(saved_path).stem.startswith("extract") else "another exp_name or results_dir")
        raise ConfigError(f"{saved_path} was made with other settings ({'; '.join(changed)}); "
                          f"use {others}, or remove that folder")


def settings_match(folder, script, config, keys):
    """True if `script`'s saved config in `folder` exists and agrees with `config` on `keys` (for the
    checks that skip a completed stage: outputs made with other settings are not complete for this one)."""
    try:
        check_same_settings(Path(folder) / f"{Path(script).stem}.config", config, keys)
    except ConfigError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Copies of a config, and the stage folders (their paths: common/layout.py).

def with_values(config, **values):
    """A copy of `config` with these keys set to these values (the config itself is never changed)."""
    return argparse.Namespace(**{**vars(config), **values})


def for_vision(config, vision):
    """A copy of `config` whose vision is `vision` (the pipeline and the report handle both models)."""
    return with_values(config, vision=vision)


@contextlib.contextmanager
def stage_folder(folder, config, script, keys):
    """Open a stage's output folder for `script` (e.g. "rnn_train.py"): lock it against a second
    run, clear temporaries a killed run left, refuse a config whose `keys` differ from the saved
    <script>.config of an earlier run, and save this one there. Yields the folder."""
    folder = Path(folder)
    with folder_lock(folder, script):
        remove_stale_temporaries(folder)
        saved_config = folder / f"{Path(script).stem}.config"
        if saved_config.exists():
            check_same_settings(saved_config, config, keys)
        save_config(config, saved_config)
        yield folder
