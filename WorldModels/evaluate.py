"""Score a trained controller in the real environment; GIFs of the agent and of its dream.

    python WorldModels/evaluate.py results/.../vae/controller/best.json -c WorldModels/configs/smoke.config \
        --vision vae [--episodes N] [--validation] [--gif agent.gif] [--dream --gif dream.gif]

Plays --episodes real test episodes (default: the config's evaluate_episodes) with fixed seeds and
prints mean ± std (ddof=1), its 95% CI, min and max; writes the scores (CSV), a summary (JSON) and a
histogram beside the controller file (see stages/evaluation.py). The test episodes give the score
a setting is published with; choose between settings with --validation, which plays the validation
episodes instead (validation_episodes of them, seeds of their own) into <name>_validation.* files.
--gif PATH writes one episode as a GIF: the real frame, the vision model's reconstruction and the
RNN's prediction side by side; with --dream, a dream rollout decoded by the vision model instead.
--episodes 0 only makes the GIF.
"""

from pathlib import Path

from common.config import parse_config
from common.errors import exit_on_user_error
from common.layout import evaluation_file


def add_arguments(parser):
    parser.add_argument("controller", type=Path, help="controller JSON file (best.json of train.py)")
    parser.add_argument("--episodes", type=int, help="real episodes to score (0: none; default: evaluate_episodes, "
                        "or validation_episodes with --validation)")
    parser.add_argument("--validation", action="store_true", help="play the validation episodes (for choosing "
                        "between settings), not the test episodes")
    parser.add_argument("--gif", type=Path, help="write a GIF of one episode to this path")
    parser.add_argument("--dream", action="store_true", help="with --gif: a dream rollout instead of a real one")


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0], add_arguments=add_arguments)
    episode_set = "validation" if config.validation else "test"
    if config.episodes is None:
        config.episodes = config.validation_episodes if config.validation else config.evaluate_episodes
    if config.episodes < 0:
        raise SystemExit(f"error: argument --episodes: must be >= 0, got {config.episodes}")
    # here, not at the top: a bad config is refused before TensorFlow starts
    from stages.agent import episode_seeds
    from stages.evaluation import describe_scores, dream_gif, evaluate_controller, load_for_config, real_episode_gif

    parameters = load_for_config(config.controller, config, report=print)
    summary = None
    if config.episodes:
        summary = evaluate_controller(config, config.controller, config.episodes, episode_set)
        print(f"{config.controller} ({config.vision}): {describe_scores(summary)}, min {summary['min']:.1f}, "
              f"max {summary['max']:.1f}; {episode_set} episodes of {config.env_backend}'s CarRacing; scores in "
              f"{evaluation_file(config.controller, 'evaluation.csv', config.env_backend, episode_set)}")
    if config.gif:
        seed = episode_seeds(config.seed, "evaluate", 0, 1)[0]
        make_gif = dream_gif if config.dream else real_episode_gif
        score = make_gif(config, parameters, config.gif, seed)
        print(f"wrote {config.gif} ({'dream' if config.dream else 'real'} episode, score {score:.1f})")
    return summary


if __name__ == "__main__":
    with exit_on_user_error():
        main()
