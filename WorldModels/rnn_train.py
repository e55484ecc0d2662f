"""Train the MDN-RNN (M) on a vision model's series.

    python WorldModels/rnn_train.py -c WorldModels/configs/smoke.config --vision vae

Trains for rnn_num_steps steps (whole epochs of rnn_validation_every steps), validating on the
held-out episodes after each: the log holds the RNN's negative log-likelihood of the next latent
beside that of the baseline z_(t+1) = mu_t, so a reader sees what it learned. Writes rnn.keras,
initial_z.json (for the dream), figures and metrics under <vision>/ (see stages/memory.py). A killed
run resumes from its checkpoint.
"""

from common.config import parse_config
from common.errors import exit_on_user_error


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    from stages.memory import train_memory  # a bad key is refused before TensorFlow starts

    return train_memory(config)


if __name__ == "__main__":
    with exit_on_user_error():
        main()
