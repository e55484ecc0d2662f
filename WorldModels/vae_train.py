"""Train the ConvVAE (V) on the collected rollouts.

    python WorldModels/vae_train.py -c WorldModels/configs/smoke.config

Held-out episodes (holdout_fraction) are never trained on; their frames give the validation
losses, the per-epoch figures and the final metrics. A killed run resumes from its checkpoint;
a rerun with a larger vae_num_epoch trains on from where the last run ended. Outputs: stages/vision.py.
"""

from common.config import parse_config
from common.errors import exit_on_user_error
from stages.vision import train_vision


def main(argv=None):
    return train_vision(parse_config(argv, description=__doc__.split("\n\n")[0]), "vae")


if __name__ == "__main__":
    with exit_on_user_error():
        main()
