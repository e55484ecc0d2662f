"""Compare the VAE and VAE/GAN world models of one experiment: report.md with one table and the figures.

    python WorldModels/compare.py -c WorldModels/configs/smoke.config

Reads what the stages wrote (both vision models, MDN-RNNs, controllers and their evaluations;
pipeline.py --vision both runs them all and then this) and writes report.md and report/ under
<results_dir>/<exp_name>/<env_name>/ (see stages/report.py). Stages that have not run show "-".
"""

from common.config import parse_config
from common.errors import exit_on_user_error


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    from stages.report import write_report  # a bad key is refused before TensorFlow starts

    return write_report(config)


if __name__ == "__main__":
    with exit_on_user_error():
        main()
