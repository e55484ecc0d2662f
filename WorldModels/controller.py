"""The controller C: a linear map from the agent's features to CarRacing's action."""

import numpy as np


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
