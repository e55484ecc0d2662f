"""Train the VAE/GAN vision model (Larsen et al. 2016) on the collected rollouts.

    python WorldModels/vaegan_train.py -c WorldModels/configs/smoke.config

The same data, held-out split, batch size, epochs, checkpoints, logs and figures as vae_train.py;
only the model differs (vaegan/vaegan.py, vaegan_* keys). Its figures also show the trained VAE's
reconstructions of the same frames when vae_train.py has run. Outputs: stages/vision.py.
"""

from common.config import parse_config
from common.errors import exit_on_user_error


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    from stages.vision import train_vision  # a bad key is refused before TensorFlow starts

    return train_vision(config, "vaegan")


if __name__ == "__main__":
    with exit_on_user_error():
        main()
