"""Score a trained controller in the real environment; GIFs of the agent and of its dream.

    python WorldModels/evaluate.py results/.../vae/controller/best.json -c WorldModels/configs/smoke.config \
        --vision vae [--episodes N] [--gif agent.gif] [--dream --gif dream.gif]

Plays --episodes real episodes (default: the config's evaluate_episodes) with fixed seeds and
prints mean ± std, min and max; writes the scores (CSV), a summary (JSON) and a histogram beside
the controller file (see stages/evaluation.py).
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
    parser.add_argument("--episodes", type=int, help="real episodes to score (0: none; default: evaluate_episodes)")
    parser.add_argument("--gif", type=Path, help="write a GIF of one episode to this path")
    parser.add_argument("--dream", action="store_true", help="with --gif: a dream rollout instead of a real one")


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0], add_arguments=add_arguments)
    config.episodes = config.evaluate_episodes if config.episodes is None else config.episodes
    if config.episodes < 0:
        raise SystemExit(f"error: argument --episodes: must be >= 0, got {config.episodes}")
    # here, not at the top: a bad config is refused before TensorFlow starts
    from stages.agent import episode_seeds
    from stages.evaluation import describe_scores, dream_gif, evaluate_controller, load_for_config, real_episode_gif

    parameters = load_for_config(config.controller, config)
    summary = None
    if config.episodes:
        summary = evaluate_controller(config, config.controller, config.episodes)
        print(f"{config.controller} ({config.vision}): {describe_scores(summary)}, min {summary['min']:.1f}, "
              f"max {summary['max']:.1f}; {config.env_backend}'s CarRacing; scores in "
              f"{evaluation_file(config.controller, 'evaluation.csv', config.env_backend)}")
    if config.gif:
        seed = episode_seeds(config.seed, "evaluate", 0, 1)[0]
        make_gif = dream_gif if config.dream else real_episode_gif
        score = make_gif(config, parameters, config.gif, seed)
        print(f"wrote {config.gif} ({'dream' if config.dream else 'real'} episode, score {score:.1f})")
    return summary


if __name__ == "__main__":
    with exit_on_user_error():
        main()
