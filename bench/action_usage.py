"""Does M use the actions? The action_usage of world models, side by side, from their memory_metrics.json.

    python bench/action_usage.py docs/runs/laptop_vae_kl4 docs/runs/laptop_dream [...]

Each argument is a record folder holding a memory_metrics.json with action_usage (rnn_train.py writes it;
stages/action_usage.py says how it is measured). One row per world model: M's held-out NLL per latent
dimension with the real actions and with the actions shuffled in time (the gain is what the actions tell
M), then, for each probe action held 20 steps from the same real state, the change of the frame from
coasting's in M's dream over the real change (as V reconstructs the real frames: 1.0 is a dream that
moves as much as the world, 0 one that ignores the action), and the reward over those steps, real and
dreamt. The table of docs/results.md's dream section is printed by this script from docs/runs/.
"""

import json
import sys
from pathlib import Path

PROBES = ("steer_left", "steer_right", "gas", "brake")


def usage_of(folder):
    """memory_metrics.json's action_usage of a record folder, or exit with the reason."""
    path = Path(folder) / "memory_metrics.json"
    try:
        usage = json.loads(path.read_text())["action_usage"]
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f"{path}: no action_usage ({type(error).__name__}: {error}); rerun rnn_train.py on that world model")
    if "responses" not in usage:
        sys.exit(f"{path}: action_usage has no held-action probe (action_probe_starts=0)")
    return usage


def table(folders):
    """The markdown table: one row per record folder."""
    lines = ["| world model | held-out NLL, real / shuffled actions (gain) | " + " | ".join(
                 f"{name.replace('_', ' ')}: dream / real change" for name in PROBES)
             + " | reward over the 20 steps, gas / brake: real; dream | starts |",
             "|---|---|" + "---:|" * len(PROBES) + "---|---:|"]
    for folder in folders:
        usage = usage_of(folder)
        losses, actions = usage["losses"], usage["responses"]["actions"]
        ratios = [actions[name]["dream"] / actions[name]["real_reconstructed"] for name in PROBES]
        rewards = (f"{actions['gas']['real_reward']:.1f} / {actions['brake']['real_reward']:.1f}; "
                   f"{actions['gas']['dream_reward']:.1f} / {actions['brake']['dream_reward']:.1f}")
        lines.append(f"| {Path(folder).name} | {losses['real']['z_nll']:.4f} / {losses['shuffled']['z_nll']:.4f} "
                     f"({usage['z_nll_gain']:+.4f}) | " + " | ".join(f"{ratio:.2f}" for ratio in ratios)
                     + f" | {rewards} | {usage['responses']['starts']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(table(sys.argv[1:]))
