"""Collect CarRacing rollouts with an exploration policy: one .npz per episode in record/.

    python WorldModels/extract.py -c WorldModels/configs/smoke.config [--num_episodes 8] [--num_workers 2]
    python WorldModels/extract.py -c ... --extract_round 1 --extract_policy controller   (the paper's iteration)

Episode i is record/episode_<i>.npz (format in common/episodes.py); round r >= 1 of collection (say, with
the trained controller) adds record/round<rr>_episode_<i>.npz beside them, and every later stage
reads all of them. record_name picks another folder instead of record/. Policies (stages/policies.py):
original (the original's random controller acting through the untrained agent; the default),
controller (a trained controller, with exploration noise), brownian, white, linear.

The work is stages/rollouts.py's extract(); see its docstring for the file layout and resuming.
"""

from common.config import parse_config
from common.errors import exit_on_user_error
from stages.rollouts import extract


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    return extract(config)


if __name__ == "__main__":
    with exit_on_user_error():
        main()
