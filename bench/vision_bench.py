"""Vision training speed and memory, measured side by side in one run.

    python bench/vision_bench.py [--steps 40] [--repeats 4] [--memory_episodes 340] [--skip_memory]

0. Against the machine: the ConvVAE's and the VAE/GAN's training steps (batch 100) in frames/s and
   in achieved GFLOP/s (counted from their layers; training = 3x the forward pass: the forward pass,
   the gradient of the inputs and that of the weights), as a fraction of a float32 2048 x 2048
   matrix product's GFLOP/s measured in the same run (target >= 0.5 for the VAE). And against the
   peer: the same ConvVAE training step in PyTorch, if installed (torch_peers.py; target: ours >= 1.0x).
   The first line printed names the CPU, its vector extensions and whether TensorFlow uses oneDNN.
1. Pipeline efficiency: the ConvVAE's fit() streaming episode files through data.frame_dataset,
   against the bare compiled train step on one in-memory batch (target >= 0.9). Also shown: a
   compiled loop over the same stream without fit(), which isolates the pipeline's own cost from
   Keras's per-step overhead.
2. VAE/GAN step time / VAE step time, both bare compiled steps on the same batch (target <= 3, for
   the first, hybrid VAE/GAN: strided discriminator, the VAE's decoder); and the paper config's
   VAE/GAN (the authors' discriminator and decoder at full width), stated: a GPU's job.
3. Peak memory: the RSS of a process that trains the ConvVAE for a whole epoch over more than
   4 GB of frames (synthetic episode files in the documented format), against the data's size
   (target < 3 GB: streaming really streams).
Timings alternate in short segments and report medians (timing.py), with the cores each got.
Episode files are synthetic (a road on grass that drifts from frame to frame, so they compress
like real ones) and written to a temporary folder.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
import numpy as np
import tensorflow as tf

import torch_peers
from common.data import frame_dataset
from common.episodes import save_episode
from timing import alternate, machine_description, per_unit, publish
from vae.vae import ConvVAE
from vaegan.vaegan import VAEGAN

BATCH = 100


def synthetic_episode(rng, length):
    """Frames of a grey road band over green grass, drifting a pixel at a time, with a red car."""
    rows, columns = np.mgrid[0:64, 0:64]
    angle, offset = rng.uniform(0, np.pi), rng.uniform(-10, 10)
    road = np.abs((columns - 32) * np.cos(angle) + (rows - 32) * np.sin(angle) - offset) < 8
    frame = np.where(road[..., None], [102, 102, 102], [102, 204, 102]).astype(np.uint8)
    frame[44:50, 30:34] = (204, 0, 0)
    shifts = np.cumsum(rng.integers(-1, 2, size=(length, 2)), axis=0)
    return np.stack([np.roll(frame, tuple(shift), axis=(0, 1)) for shift in shifts])


def write_episodes(folder, count, length, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        obs = synthetic_episode(rng, length)
        paths.append(save_episode(folder / f"episode_{index:06d}.npz", obs, rng.uniform(-1, 1, (length, 3)),
                                  np.zeros(length), np.arange(length) == length - 1, 300))
    return paths


def vae():
    model = ConvVAE(32, 0.5, seed=0)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    return model


def vaegan(**settings):
    """A built, compiled VAE/GAN (z 32): by default the paper config's (the authors' discriminator and
    decoder, full width)."""
    model = VAEGAN(32, 0.5, seed=0, **settings)
    model.build()
    model.compile(*(keras.optimizers.RMSprop(3e-4) for _ in range(3)))
    return model


# The first (hybrid) VAE/GAN, whose speed docs/results.md's tables are: the authors' networks (the defaults
# since) cost far more (docs/results.md, "vaegan_train.py" in the paper-scale table).
HYBRID = {"discriminator": "strided", "feature_layer": 3, "gamma": 10.0, "pixel_weight": 0.1, "decoder": "world_models"}


def forward_flops(network):
    """Multiply-adds x 2 of one frame's forward pass through a network's Conv2D, Conv2DTranspose
    and Dense layers (the rest is elementwise and negligible)."""
    flops = 0
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):  # every input pixel meets every kernel tap
            _, height, width, channels = layer.input.shape
            flops += 2 * height * width * channels * np.prod(layer.kernel_size) * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):  # every output pixel meets every kernel tap
            _, height, width, _ = layer.output.shape
            flops += 2 * height * width * np.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * np.prod(layer.kernel.shape)
    return int(flops)


def training_flops(model):
    """FLOPs of one frame's training step: 3x the forward pass of every network the step runs (the
    VAE/GAN decodes twice, reconstructions and prior samples, and judges three batches)."""
    forward = forward_flops(model.encoder) + forward_flops(model.decoder)
    if isinstance(model, VAEGAN):
        forward += forward_flops(model.decoder) + 3 * forward_flops(model.discriminator)
    return 3 * forward


def matmul_steps(size=2048):
    """run(steps): a float32 size x size matrix product, `steps` times; and its FLOPs per product."""
    a, b = tf.random.normal((size, size), seed=1), tf.random.normal((size, size), seed=2)
    product = tf.function(lambda: tf.matmul(a, b))
    product()
    return (lambda steps: [float(product()[0, 0]) for _ in range(steps)]), 2 * size ** 3


def bare_steps(model, batch):
    """run(steps): the compiled train step on one in-memory batch, `steps` times (warmed up here)."""
    step = tf.function(model.train_step)
    for _ in range(3):
        step(batch)
    return lambda steps: [float(step(batch)["loss"]) for _ in range(steps)]


def loop_steps(model, paths):
    """run(steps): the compiled train step on batches from the stream, without fit()."""
    step = tf.function(lambda iterator: model.train_step(next(iterator)))
    iterator = iter(frame_dataset(paths, BATCH, seed=0, repeat=True, drop_remainder=True))
    for _ in range(3):
        step(iterator)
    return lambda steps: [float(step(iterator)["loss"]) for _ in range(steps)]


class StepTimer(keras.callbacks.Callback):
    """Times fit()'s steps after the first `skip` (the pipeline's start: the shuffle buffer fills)."""

    def __init__(self, skip):
        super().__init__()
        self.skip, self.started, self.steps = skip, None, 0

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.skip:
            self.started, self.cpu = time.perf_counter(), os.times()
        elif batch + 1 > self.skip:
            self.steps += 1

    def result(self):
        wall, now = time.perf_counter() - self.started, os.times()
        cores = ((now.user - self.cpu.user) + (now.system - self.cpu.system)) / wall
        return wall / self.steps, cores


def fit_measure(model, dataset_for, steps):
    """A measurement: fit() for `steps` steps (plus 5 of warm-up) on a fresh pass of the stream."""
    passes = iter(range(10**6))

    def measure():
        timer = StepTimer(skip=5)
        model.fit(dataset_for(next(passes)), epochs=1, steps_per_epoch=steps + 5, callbacks=[timer], verbose=0,
                  shuffle=False)
        return timer.result()
    return measure


def memory_run(folder, episodes, length):
    """In a fresh process: train the ConvVAE one epoch over every episode; print its peak RSS in MB."""
    paths = sorted(Path(folder).glob("episode_*.npz"))
    model = vae()
    model.fit(frame_dataset(paths, BATCH, seed=0, repeat=True, drop_remainder=True), epochs=1,
              steps_per_epoch=episodes * length // BATCH, verbose=0, shuffle=False)
    print(f"peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per segment")
    parser.add_argument("--repeats", type=int, default=4, help="segments per measurement, alternated")
    parser.add_argument("--memory_episodes", type=int, default=340, help="1000-frame episodes in the memory test")
    parser.add_argument("--skip_memory", action="store_true")
    parser.add_argument("--memory_run", help=argparse.SUPPRESS)  # the child process of the memory test
    args = parser.parse_args()
    if args.memory_run:
        return memory_run(args.memory_run, args.memory_episodes, 1000)

    print(f"measured on: {machine_description()}")
    with tempfile.TemporaryDirectory() as folder:
        batch = tf.constant(synthetic_episode(np.random.default_rng(1), BATCH), tf.float32) / 255.0
        paths = write_episodes(Path(folder), 16, 1000)
        matmul, matmul_flops = matmul_steps()
        peers = {}
        if torch_peers.available():
            torch_vae = torch_peers.vae_step(batch.numpy())
            peers["PyTorch VAE"] = per_unit(lambda: torch_vae(args.steps), args.steps)
        else:
            print("PyTorch is not installed: the PyTorch peer is skipped (pip install torch to measure it)")
        # Separate instances: once a bare tf.function of train_step has run on a model, that
        # model's own fit() was seen to run slower (Keras 3.15), which would flatter the bare step.
        bare_vae, bare_vaegan = bare_steps(vae(), batch), bare_steps(vaegan(**HYBRID), batch)
        bare_paper, paper_steps = bare_steps(vaegan(), batch), max(1, args.steps // 10)  # ~50x the VAE's step
        loop = loop_steps(vae(), paths)
        fit_model = vae()
        fit_model.fit(frame_dataset(paths, BATCH, seed=0, repeat=True, drop_remainder=True), epochs=1,
                      steps_per_epoch=5, verbose=0)  # compile the train function
        results = alternate({
            "bare VAE": per_unit(lambda: bare_vae(args.steps), args.steps),
            "loop over stream": per_unit(lambda: loop(args.steps), args.steps),
            "fit on stream": fit_measure(fit_model, lambda seed: frame_dataset(
                paths, BATCH, seed=seed, repeat=True, drop_remainder=True), args.steps),
            "bare VAE/GAN": per_unit(lambda: bare_vaegan(args.steps), args.steps),
            "bare paper VAE/GAN": per_unit(lambda: bare_paper(paper_steps), paper_steps),
            "matmul": per_unit(lambda: matmul(args.steps), args.steps),
            **peers,
        }, args.repeats)
        bare, bare_cores = results["bare VAE"]
        matmul_gflops = matmul_flops / results["matmul"][0] / 1e9
        frame_flops = {"VAE": training_flops(vae()), "VAE/GAN": training_flops(vaegan(**HYBRID)),
                       "paper VAE/GAN": training_flops(vaegan())}
        rows = []
        for name, target in (("VAE", ">= 0.5"), ("VAE/GAN", ""), ("paper VAE/GAN", "")):
            seconds, cores = results[f"bare {name}"]
            gflops = frame_flops[name] * BATCH / seconds / 1e9
            rows.append((f"{name} training step, GFLOP/s ({BATCH / seconds:.0f} frames/s, {cores:.1f} cores)", gflops,
                         matmul_gflops, "/ matmul GFLOP/s", target, gflops / matmul_gflops))
        if peers:
            seconds, cores = results["PyTorch VAE"]
            rows.append((f"PyTorch VAE training step, frames/s ({cores:.1f} cores)", BATCH / seconds, BATCH / bare,
                         "ours / PyTorch frames/s", ">= 1.0", seconds / bare))
        for name, target in (("loop over stream", ""), ("fit on stream", ">= 0.9")):
            seconds, cores = results[name]
            rows.append((f"{name}, frames/s ({cores:.1f} cores)", BATCH / seconds, BATCH / bare,
                         f"/ bare ({bare_cores:.1f} cores)", target, bare / seconds))
        rows.append(("VAE/GAN step, s", results["bare VAE/GAN"][0], bare, "VAE/GAN / VAE step time", "<= 3",
                     results["bare VAE/GAN"][0] / bare))
        rows.append(("paper VAE/GAN step, s", results["bare paper VAE/GAN"][0], bare, "paper VAE/GAN / VAE", "",
                     results["bare paper VAE/GAN"][0] / bare))

        if not args.skip_memory:
            for path in paths:
                path.unlink()
            print(f"writing {args.memory_episodes} synthetic 1000-frame episodes "
                  f"({args.memory_episodes * 1000 * 64 * 64 * 3 / 1e9:.1f} GB of frames)...")
            write_episodes(Path(folder), args.memory_episodes, 1000, seed=2)
            child = subprocess.run([sys.executable, __file__, "--memory_run", folder,
                                    "--memory_episodes", str(args.memory_episodes)],
                                   capture_output=True, text=True, check=True)
            peak_mb = float(child.stdout.split("peak_rss_mb")[-1])
            data_gb = args.memory_episodes * 1000 * 64 * 64 * 3 / 1e9
            rows.append((f"peak RSS, one epoch over {data_gb:.1f} GB of frames, GB", peak_mb / 1024, data_gb,
                         "peak RSS, GB", "< 3", peak_mb / 1024))

    print(f"\n{'measure':<52} {'value':>9} {'reference':>10}   {'figure':<26} {'result':>7} {'target':>7}")
    for name, value, reference, figure, target, result in rows:
        print(f"{name:<52} {value:>9.3f} {reference:>10.3f}   {figure:<26} {result:>7.2f} {target:>7}")
    print(f"(matmul: {matmul_gflops:.0f} GFLOP/s; VAE {frame_flops['VAE'] / 1e6:.0f}, first VAE/GAN "
          f"{frame_flops['VAE/GAN'] / 1e6:.0f} and paper VAE/GAN {frame_flops['paper VAE/GAN'] / 1e6:.0f} MFLOP per "
          "training frame)")
    publish("vision_bench", [(figure.replace("/ bare", f"{name.split(',')[0]} / bare step")
                              .replace("/ matmul", f"{name.split(',')[0]} / matmul"), result, target)
                             for name, _, _, figure, target, result in rows if target])


if __name__ == "__main__":
    main()
