"""Train the ConvVAE (V) on the collected rollouts.

    python WorldModels/vae_train.py -c WorldModels/configs/smoke.config

Held-out episodes (holdout_fraction) are never trained on; their frames give the validation
losses, the per-epoch figures and the final metrics. A killed run resumes from its checkpoint;
a rerun with a larger vae_num_epoch trains on from where the last run ended. Outputs: stages/vision.py.
"""

from common.config import parse_config
from common.errors import exit_on_user_error


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    from stages.vision import train_vision  # a bad key is refused before TensorFlow starts

    return train_vision(config, "vae")


if __name__ == "__main__":
    with exit_on_user_error():
        main()
