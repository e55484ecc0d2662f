"""Encode every collected episode with a trained vision model, for the MDN-RNN.

    python WorldModels/series.py -c WorldModels/configs/smoke.config --vision vae

Writes <vision>/series.npz (format: memory.SERIES_FORMAT): latent mean and log-variance of every
frame, with the actions, rewards and done flags, episodes padded to max_frames and marked done,
and their true lengths. The VAE's and the VAE/GAN's series live in their own folders. A series
that is up to date (same episodes, same vision model) is not encoded again; a killed run resumes.
"""

from common.config import parse_config
from common.errors import exit_on_user_error


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    from stages.memory import encode_series  # a bad key is refused before TensorFlow starts

    return encode_series(config)


if __name__ == "__main__":
    with exit_on_user_error():
        main()
