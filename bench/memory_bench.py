"""Memory-stage speed, measured side by side in one run.

    python bench/memory_bench.py [--episodes 8] [--seq_len 200] [--rnn_batch 32] [--steps 20] [--repeats 4]

1. Series encoding: frames/s of memory.encode_episodes (episode files streamed through tf.data,
   batches of 100) against bare calls of the same compiled encoder on in-memory frames (target >= 0.9).
2. MDN-RNN training: timesteps/s of fit() on data.sequence_dataset windows against the bare compiled
   train step on one in-memory batch (target >= 0.9), with the paper's sizes (z 32, LSTM 256,
   5 mixtures); the paper's sequences of 1000 are shortened to --seq_len so a step fits a CPU.
3. Against the peer: the same MDN-RNN training step in PyTorch (torch_peers.py; nn.LSTM), if
   installed, in timesteps/s (target: ours >= 1.0x).
Also shown: a compiled loop over the same windows without fit(), the pipeline's own cost. The
first line printed names the CPU, its vector extensions and whether TensorFlow uses oneDNN. Timings
alternate in short segments and report medians (timing.py). Episode files and series are
synthetic (vision_bench.synthetic_episode) in temporary folders.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
import numpy as np
import tensorflow as tf

import torch_peers
from common.data import sequence_dataset
from common.episodes import check_episode
from rnn.rnn import MDNRNN
from stages.memory import encode_episodes, frame_encoder
from timing import alternate, machine_description, per_unit, publish
from vae.vae import ConvVAE
from vision_bench import bare_steps, fit_measure, synthetic_episode, write_episodes

BATCH = 100


def encoder():
    model = ConvVAE(32, 0.5, seed=0)
    model.build()
    return frame_encoder(model)  # uint8 frames in, as series.py uses it


def bare_encode(encode, frames):
    """run(): the compiled encoder over in-memory frames, in batches of BATCH (warmed up here)."""
    for start in range(0, 3 * BATCH, BATCH):
        encode(frames[start:start + BATCH])

    def run():
        for start in range(0, len(frames), BATCH):
            mu, _ = encode(frames[start:start + BATCH])
        float(mu[0, 0])
    return run


def series_encode(encode, paths):
    """run(): memory.encode_episodes over the episode files (warmed up here)."""
    episodes = [check_episode(path) for path in paths]
    config = argparse.Namespace(max_frames=1000, z_size=32, vae_batch_size=BATCH)
    encode_episodes(encode, episodes[:1], config)
    return lambda: encode_episodes(encode, episodes, config)


def rnn_model():
    model = MDNRNN(z_size=32, rnn_size=256, num_mixture=5, predict_reward=True, predict_done=True, seed=0)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3, clipvalue=1.0))
    return model


def synthetic_series(episodes, steps, rng):
    mu = np.cumsum(rng.normal(scale=0.1, size=(episodes, steps, 32)), axis=1).astype(np.float16)
    return {"mu": mu, "logvar": np.full_like(mu, -2.0), "action": rng.uniform(-1, 1, (episodes, steps, 3)).astype(
        np.float16), "reward": np.zeros((episodes, steps), np.float16), "done": np.zeros((episodes, steps), bool),
        "length": np.full(episodes, steps, np.int32)}


def loop_rnn_steps(model, dataset):
    step = tf.function(lambda iterator: model.train_step(next(iterator)))
    iterator = iter(dataset)
    for _ in range(3):
        step(iterator)
    return lambda steps: [float(step(iterator)["loss"]) for _ in range(steps)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=8, help="1000-frame episode files to encode")
    parser.add_argument("--seq_len", type=int, default=200, help="RNN training sequence length")
    parser.add_argument("--rnn_batch", type=int, default=32, help="RNN sequences per batch")
    parser.add_argument("--steps", type=int, default=20, help="timed RNN steps per segment")
    parser.add_argument("--repeats", type=int, default=6, help="segments per measurement, alternated")
    args = parser.parse_args()
    print(f"measured on: {machine_description()}")
    rng = np.random.default_rng(0)
    encode = encoder()
    window = args.seq_len + 1
    series = synthetic_series(4 * args.rnn_batch, window, rng)

    def windows(seed):
        return sequence_dataset(series, np.arange(len(series["mu"])), window, args.rnn_batch, seed=seed)

    batch = next(iter(windows(1)))
    fit_model = rnn_model()  # separate instances, as in vision_bench.py
    fit_model.fit(windows(0), epochs=1, steps_per_epoch=3, verbose=0)
    bare_rnn, loop_rnn = bare_steps(rnn_model(), batch), loop_rnn_steps(rnn_model(), windows(2))
    peers = {}
    if torch_peers.available():
        arrays = (batch[key].numpy().astype(np.float32) for key in ("mu", "action", "reward"))
        torch_rnn = torch_peers.mdnrnn_step(*arrays)
        peers["PyTorch RNN step"] = per_unit(lambda: torch_rnn(args.steps), args.steps)
    else:
        print("PyTorch is not installed: the PyTorch peer is skipped (pip install torch to measure it)")
    with tempfile.TemporaryDirectory() as folder:
        paths = write_episodes(Path(folder), args.episodes, 1000)
        frames = tf.constant(np.concatenate([synthetic_episode(rng, 1000) for _ in range(args.episodes)]))
        results = alternate({
            "bare encoder": per_unit(bare_encode(encode, frames), len(frames)),
            "series encoding": per_unit(series_encode(encode, paths), len(frames)),
            "bare RNN step": per_unit(lambda: bare_rnn(args.steps), args.steps),
            "RNN loop over windows": per_unit(lambda: loop_rnn(args.steps), args.steps),
            "RNN fit on windows": fit_measure(fit_model, windows, args.steps),
            **peers,
        }, args.repeats)

    timesteps = args.seq_len * args.rnn_batch
    # (label, units per step, reference measurement, measurement, target, the published ratio's name)
    rows = [("series encoding, frames/s", 1, "bare encoder", "series encoding", ">= 0.9",
             "series encoding: pipeline / bare"),
            (f"MDN-RNN loop, timesteps/s (LSTM 256, seq {args.seq_len}, batch {args.rnn_batch})", timesteps,
             "bare RNN step", "RNN loop over windows", "", ""),
            (f"MDN-RNN fit(), timesteps/s (LSTM 256, seq {args.seq_len}, batch {args.rnn_batch})", timesteps,
             "bare RNN step", "RNN fit on windows", ">= 0.9", "MDN-RNN fit(): pipeline / bare")]
    if peers:  # here the "pipeline" column is our bare step and the "bare" column PyTorch's
        rows.append(("MDN-RNN, ours / PyTorch, timesteps/s (bare steps)", timesteps, "PyTorch RNN step",
                     "bare RNN step", ">= 1.0", "MDN-RNN: ours / PyTorch"))
    print(f"\n{'measure':<62} {'pipeline':>9} {'bare':>9} {'efficiency':>11} {'cores':>11} {'target':>7}")
    for label, units, bare_name, name, target, _ in rows:
        (bare, bare_cores), (seconds, cores) = results[bare_name], results[name]
        print(f"{label:<62} {units / seconds:>9.0f} {units / bare:>9.0f} {bare / seconds:>11.2f} "
              f"{cores:>5.1f} /{bare_cores:>4.1f} {target:>7}")
    publish("memory_bench", [(figure, results[bare_name][0] / results[name][0], target)
                             for _, _, bare_name, name, target, figure in rows if target])


if __name__ == "__main__":
    main()
