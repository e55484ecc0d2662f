"""The controller C: a linear map from the agent's features to CarRacing's action.

Features are z (exp_mode=z), [z, h] (exp_mode=zh, state_space=1) or [z, h, c] (state_space=2),
with h and c the MDN-RNN's state. The parameters are one flat vector, laid out as the original:
the 3 biases, then the (input_size, 3) weight matrix row by row; 867 of them for z 32 and h 256.
Saved as JSON (see save_controller); the original's files ([parameters, ...]) load too.
"""

import json
import math
from pathlib import Path

import numpy as np

from common.config import settings_of
from common.episodes import ACTION_SIZE
from common.errors import UserFacingError
from common.files import write_json_atomic


def carracing_action(output):
    """Map tanh outputs in [-1, 1] (..., 3) to CarRacing's action, as the original does.

    steer = output[0] in [-1, 1]; gas = (output[1] + 1) / 2 in [0, 1]; brake = clip(output[2], 0, 1),
    so half of the brake's range means "no brake". Returns float32 of the same shape.
    """
    output = np.asarray(output, dtype=np.float32)
    steer = output[..., 0]
    gas = (output[..., 1] + 1.0) / 2.0
    brake = np.clip(output[..., 2], 0.0, 1.0)
    # astype: numpy 1.x promotes a single action's 0-d float32 parts to float64
    return np.stack([steer, gas, brake], axis=-1).astype(np.float32)


def input_parts(config):
    """The controller's input layout, in order: z; [z, h]; or [z, h, c] (exp_mode, state_space)."""
    if config.exp_mode == "z":
        return ("z",)
    return ("z", "h", "c") if config.state_space >= 2 else ("z", "h")


def input_size(config):
    """Number of features the controller reads (input_parts' sizes: z_size, rnn_size, rnn_size)."""
    sizes = {"z": config.z_size, "h": config.rnn_size, "c": config.rnn_size}
    return sum(sizes[part] for part in input_parts(config))


def controller_features(z, h, c, config):
    """The controller's input for a batch, float32 (n, input_size): input_parts(config) concatenated."""
    values = {"z": z, "h": h, "c": c}
    return np.concatenate([values[part] for part in input_parts(config)], axis=-1).astype(np.float32)


def num_parameters(config):
    return (input_size(config) + 1) * ACTION_SIZE


def split_parameters(parameters, features):
    """Flat parameter vectors (..., P) -> (weights (..., features, 3), biases (..., 3))."""
    parameters = np.asarray(parameters, dtype=np.float32)
    biases = parameters[..., :ACTION_SIZE]
    weights = parameters[..., ACTION_SIZE:].reshape(*parameters.shape[:-1], features, ACTION_SIZE)
    return weights, biases


def linear_actions(features, parameters, noise=None):
    """CarRacing actions (n, 3) for features (n, F), each row with its own flat parameters (n, P):
    carracing_action(tanh(features @ W + b)). noise (n, 3), if given, is added to the tanh outputs,
    which are clipped back to [-1, 1] (exploration around a trained controller)."""
    weights, biases = split_parameters(parameters, features.shape[-1])
    outputs = np.tanh(np.einsum("nf,nfa->na", features, weights) + biases)
    if noise is not None:
        outputs = np.clip(outputs + noise, -1.0, 1.0)
    return carracing_action(outputs)


def weight_decay_penalty(parameters, weight_decay):
    """The original's L2 term added to each candidate's fitness: -weight_decay * mean(params^2), (n,)."""
    parameters = np.asarray(parameters, dtype=np.float64)
    return -weight_decay * np.mean(np.square(parameters), axis=-1)


def reduce_scores(scores, mode):
    """A candidate's fitness from its episode scores (n, episodes): their mean, or (mode=min) the worst."""
    return np.min(scores, axis=-1) if mode == "min" else np.mean(scores, axis=-1)


# -- files ------------------------------------------------------------------------------------

CONTROLLER_SETTINGS = settings_of("controller_shape")


def save_controller(path, parameters, config, **details):
    """Write a controller as JSON, atomically: its parameters, the settings that give them a meaning
    (exp_mode, state_space, z_size, rnn_size, vision) and any details given (score, generation, ...)."""
    document = {"parameters": np.asarray(parameters, dtype=float).tolist(),
                **{key: getattr(config, key) for key in (*CONTROLLER_SETTINGS, "vision")}, **details}
    write_json_atomic(path, document)
    return Path(path)


def load_controller(path, config):
    """(flat parameters float32 (P,), the JSON document) of a controller file for this config's sizes.

    Accepts our files and the original's ([parameters, score]); a missing file, bad JSON, a wrong
    number of parameters or settings other than the config's are errors naming the file.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserFacingError(f"{path}: no such controller file") from None
    except (OSError, ValueError) as error:
        raise UserFacingError(f"{path}: not a controller JSON file ({error})") from None
    if isinstance(document, list) and document:  # the original's format
        document = {"parameters": document[0]}
    if not isinstance(document, dict) or not isinstance(document.get("parameters"), list):
        raise UserFacingError(f"{path}: not a controller file (no list of parameters)")
    for key in CONTROLLER_SETTINGS:
        if key in document and document[key] != getattr(config, key):
            raise UserFacingError(f"{path}: made with {key}={document[key]}, the config says {getattr(config, key)}")
    try:
        parameters = np.asarray(document["parameters"], dtype=np.float32)
    except (TypeError, ValueError):
        raise UserFacingError(f"{path}: its parameters are not a list of numbers") from None
    expected = num_parameters(config)
    if parameters.shape != (expected,) or not all(math.isfinite(value) for value in parameters):
        raise UserFacingError(f"{path}: needs {expected} finite parameters for exp_mode={config.exp_mode}, "
                              f"z_size={config.z_size}, rnn_size={config.rnn_size}; it has {parameters.size}")
    return parameters, document
