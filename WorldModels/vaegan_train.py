"""Train the VAE/GAN vision model (Larsen et al. 2016) on the collected rollouts.

    python WorldModels/vaegan_train.py -c WorldModels/configs/smoke.config

The same data, held-out split, batch size, epochs, checkpoints, logs and figures as vae_train.py;
only the model differs (vaegan/vaegan.py, vaegan_* keys). Its figures also show the trained VAE's
reconstructions of the same frames when vae_train.py has run. Outputs: stages/vision.py.
"""

from common.config import parse_config
from common.errors import exit_on_user_error
from stages.vision import train_vision


def main(argv=None):
    return train_vision(parse_config(argv, description=__doc__.split("\n\n")[0]), "vaegan")


if __name__ == "__main__":
    with exit_on_user_error():
        main()
