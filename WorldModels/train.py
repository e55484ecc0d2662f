"""Train the controller (C) with CMA-ES on a trained world model, in the real environment or the dream.

    python WorldModels/train.py -c WorldModels/configs/smoke.config --vision vae [--dream_env 1]

Candidates play real CarRacing episodes on worker processes (or Ray tasks, backend=ray), or, with
dream_env=1, dream episodes of the MDN-RNN batched over the whole population; a dream-trained
controller is then scored in the real environment. Writes best.json, log.csv, log.json and
training_curve.png under <vision>/controller/ (controller_dream/ with dream_env=1, controller_warm/ for a
real run started from controller_init's parameters); a killed run resumes from
its last generation (see stages/evolution.py).
"""

from common.config import parse_config
from common.errors import exit_on_user_error


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    from stages.evolution import train_controller  # a bad key is refused before TensorFlow starts

    return train_controller(config)


if __name__ == "__main__":
    with exit_on_user_error():
        main()
