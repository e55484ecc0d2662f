"""vae_train.py / vaegan_train.py on tiny rollouts: outputs, resume after a kill, refusals, metrics."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from common.checkpoints import TrainingCheckpoint, truncate_log
from common.config import ConfigError, parse_config
from common.data import split_episodes
from common.episodes import list_episodes
from common.errors import UserFacingError
from common.layout import model_path, record_dir, vision_dir
from conftest import RUN_RECORDS, SMOKE_CONFIG, copied_results, corrupt_frames, kill_after_epoch
from stages.rollouts import extract
from stages.vision import (
    _other_vision_rows,
    build_vision_model,
    evaluate_vision,
    held_out_frames,
    load_vision_model,
    train_vision,
    vision_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--num_episodes", "4", "--max_frames", "30", "--min_frames", "5", "--num_workers", "2",
        "--vae_batch_size", "8", "--vae_num_epoch", "1", "--validation_frames", "16", "--holdout_fraction", "0.25"]


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory):
    """Tiny rollouts collected once for the module; each test copies them into its own results folder."""
    results = tmp_path_factory.mktemp("rollouts")
    extract(parse_config(["-c", str(SMOKE_CONFIG), "--results_dir", str(results), *TINY]))
    return results


@pytest.fixture
def tiny(rollouts, tmp_path):
    """tiny(--key value ...) -> a config whose results folder holds a copy of the tiny rollouts."""
    return copied_results(rollouts, tmp_path, *TINY)


def log_rows(config, vision):
    with open(vision_dir(config, vision) / "training_log.csv") as handle:
        return list(csv.DictReader(handle))


REALISM_KEYS = [f"{measure}_{kind}" for measure in ("frechet", "two_sample", "precision", "recall")
                for kind in ("real", "reconstruction", "prior")]


def test_vae_training_writes_model_log_figures_and_metrics(tiny):
    config = tiny()
    metrics = train_vision(config, "vae")
    folder = vision_dir(config, "vae")
    assert load_vision_model(model_path(config, "vae"), z_size=config.z_size).z_size == config.z_size
    assert [row["epoch"] for row in log_rows(config, "vae")] == ["0"]
    assert {"loss", "kl_loss", "reconstruction_loss", "val_loss", "val_sharpness"} <= set(log_rows(config, "vae")[0])
    assert (folder / "figures" / "reconstructions_epoch_001.png").stat().st_size > 1000
    assert json.loads((folder / "vision_metrics.json").read_text()) == metrics
    assert set(metrics) == {"vision", "mse", "ssim", "sharpness", "diversity", "prior_diversity", "latent_spread",
                            "informative_dimensions", "signal_to_noise", "kl_nats", "frames", "speed_r2",
                            "on_road_accuracy", "on_road_majority", "prior_noise_share", "road_share_real",
                            "road_share_prior", *REALISM_KEYS} and metrics["frames"] == 16
    assert all(np.isfinite(metrics[key]) for key in REALISM_KEYS)
    assert all(0.0 <= metrics[key] <= 1.0 for key in REALISM_KEYS if not key.startswith("frechet"))
    frames = held_out_frames(config)[2]  # the latent spread: std of mu over the held-out frames, per dimension
    mu = load_vision_model(model_path(config, "vae")).encode(frames.astype(np.float32) / 255.0)[0].numpy()
    assert metrics["latent_spread"] == pytest.approx(float(np.mean(np.std(mu, axis=0))), rel=1e-4)
    assert 0.0 <= metrics["on_road_accuracy"] <= 1.0 and np.isfinite(metrics["speed_r2"])
    assert (folder / "vae_train.config").exists() and (folder / "tensorboard").is_dir()
    assert not list(folder.rglob(".*.tmp*")), "no temporary file may be left behind"


def test_a_larger_epoch_count_trains_on_from_the_last_run(tiny):
    train_vision(tiny(), "vae")
    first = load_vision_model(model_path(tiny(), "vae")).get_weights()
    train_vision(tiny("--vae_num_epoch", 2), "vae")
    assert [row["epoch"] for row in log_rows(tiny(), "vae")] == ["0", "1"]
    state = json.loads((vision_dir(tiny(), "vae") / "checkpoint" / "checkpoint.json").read_text())
    assert state["epochs_done"] == 2 and set(state["inputs"]) == {"training_episodes"}
    assert not np.allclose(first[0], load_vision_model(model_path(tiny(), "vae")).get_weights()[0])


@pytest.mark.parametrize("vision", ["vae", "vaegan"])
def test_a_checkpoint_restores_weights_and_optimizer_state(tiny, vision):
    config = tiny()
    train_vision(config, vision)
    trained = load_vision_model(model_path(config, vision))
    fresh = build_vision_model(config, vision)
    training, _, _ = held_out_frames(config)
    assert vision_checkpoint(config, vision, training).restore(fresh) == 1
    for saved, restored in zip(trained.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, restored)
    optimizers = [fresh.optimizer] if vision == "vae" else [
        fresh.encoder_optimizer, fresh.decoder_optimizer, fresh.discriminator_optimizer]
    steps = (90 // config.vae_batch_size)
    assert int(optimizers[0].iterations) == steps  # the optimizer's state came back, not a fresh one
    assert all(float(np.abs(variable.numpy()).sum()) > 0 for variable in optimizers[-1].variables[2:4])


def test_a_run_killed_mid_epoch_resumes(tiny):
    config = tiny("--vae_num_epoch", 3, "--checkpoint_seconds", "0.01")  # a checkpoint after every batch
    command = [sys.executable, str(ROOT / "WorldModels" / "vae_train.py"), "-c", str(SMOKE_CONFIG),
               "--results_dir", config.results_dir, *TINY, "--vae_num_epoch", "3", "--checkpoint_seconds", "0.01"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = vision_dir(config, "vae") / "checkpoint" / "checkpoint.json"
    deadline = time.monotonic() + 240
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert state.exists(), "the run must have saved a checkpoint before the kill"
    assert json.loads(state.read_text())["epochs_done"] < 3, "the kill should land before the end"
    train_vision(config, "vae")
    assert [row["epoch"] for row in log_rows(config, "vae")] == ["0", "1", "2"]
    assert model_path(config, "vae").exists()


def test_vaegan_training_compares_with_the_trained_vae(tiny):
    config = tiny()
    assert _other_vision_rows(config, "vaegan", np.zeros((2, 64, 64, 3), np.uint8)) == []
    train_vision(config, "vae")
    rows = _other_vision_rows(config, "vaegan", np.zeros((2, 64, 64, 3), np.uint8))
    assert [label for label, _ in rows] == ["vae"] and rows[0][1].shape == (2, 64, 64, 3)
    metrics = train_vision(config, "vaegan")
    assert {"llike_loss", "discriminator_loss", "real_accuracy", "fake_accuracy", "val_sharpness"} <= set(
        log_rows(config, "vaegan")[0])
    assert model_path(config, "vaegan").exists() and metrics["vision"] == "vaegan"
    results = evaluate_vision(config)
    assert set(results) == {"vae", "vaegan"} and results["vaegan"]["frames"] == 16


def test_changed_model_settings_are_refused(tiny):
    train_vision(tiny(), "vae")
    with pytest.raises(ConfigError, match="z_size=32 there, 16 now"):
        train_vision(tiny("--z_size", 16), "vae")


def test_each_vision_model_has_its_own_kl_floor(tiny):
    """vae_kl_tolerance floors the VAE's KL and vaegan_kl_tolerance the VAE/GAN's: one changes without the other."""
    config = tiny("--vae_kl_tolerance", "2.0", "--vaegan_kl_tolerance", "0.25")
    assert build_vision_model(config, "vae").kl_tolerance == 2.0
    assert build_vision_model(config, "vaegan").kl_tolerance == 0.25
    train_vision(tiny("--vaegan_kl_tolerance", "0.25"), "vaegan")
    train_vision(tiny("--vaegan_kl_tolerance", "0.25", "--vae_kl_tolerance", "2.0"), "vaegan")  # not its key
    with pytest.raises(ConfigError, match="vaegan_kl_tolerance=0.25 there, 0.5 now"):
        train_vision(tiny(), "vaegan")


FRECHET_ORDER = ("reconstruction", "prior", "real")


def test_evaluate_vision_script_prints_a_table(tiny):
    config = tiny()
    train_vision(config, "vae")
    command = [sys.executable, str(ROOT / "WorldModels" / "evaluate_vision.py"), "-c", str(SMOKE_CONFIG),
               "--results_dir", config.results_dir, *TINY]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    header, row, _, realism_header, realism_row, _, coverage_header, coverage_row = lines[-8:]
    assert header.split() == ["vision", "MSE", "SSIM", "sharpness", "diversity", "prior", "div", "frames", "speed",
                              "R2", "on-road", "acc", "(majority)"]
    assert row.split()[0] == "vae" and len(row.split()) == 10  # the probe's three figures: episodes record speed
    assert realism_header.split() == ["vision", "Frechet:", "reconstructions", "prior", "real", "two-sample", "acc:",
                                      "reconstructions", "prior", "real"]
    metrics = json.loads((vision_dir(config, "vae") / "vision_metrics.json").read_text())
    assert realism_row.split() == ["vae", *(f"{metrics[f'frechet_{kind}']:.3g}" for kind in FRECHET_ORDER),
                                   *(f"{metrics[f'two_sample_{kind}']:.3f}" for kind in FRECHET_ORDER)]
    assert coverage_header.split() == ["vision", "precision:", "reconstructions", "prior", "real", "recall:",
                                       "reconstructions", "prior", "real", "prior", "noise", "road:", "prior",
                                       "frames"]
    assert coverage_row.split() == ["vae", *(f"{metrics[f'{measure}_{kind}']:.3f}"
                                             for measure in ("precision", "recall") for kind in FRECHET_ORDER),
                                    *(f"{metrics[key]:.3f}" for key in ("prior_noise_share", "road_share_prior",
                                                                        "road_share_real"))]
    figure = vision_dir(config, "vae").parent / "vae_vs_vaegan.png"
    assert f"prior samples: {figure}" in result.stdout and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluation_without_a_trained_model_says_what_to_run(tiny):
    with pytest.raises(Exception, match="run vae_train.py or vaegan_train.py first"):
        evaluate_vision(tiny())


def test_the_checkpoint_never_saves_a_nan_state(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoint = TrainingCheckpoint(tmp_path, every_seconds=0.0)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, logs={"loss": float("nan")})
    assert not checkpoint.state_path.exists()
    checkpoint.on_epoch_end(0, logs={"loss": 1.5})
    assert checkpoint.restore(model) == 1


def test_truncate_log_keeps_the_header_and_the_first_epochs(tmp_path):
    log = tmp_path / "training_log.csv"
    log.write_text("epoch,loss\n0,3.0\n1,2.0\n2,1.0\n")
    truncate_log(log, 2)
    assert log.read_text() == "epoch,loss\n0,3.0\n1,2.0\n"
    truncate_log(tmp_path / "missing.csv", 1)  # nothing to do


def test_a_checkpoint_is_not_resumed_on_other_inputs(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoint = TrainingCheckpoint(tmp_path, every_seconds=0.0, inputs={"series": "abc"})
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(2, logs={"loss": 1.5})
    assert checkpoint.epochs_done() == 3 and checkpoint.restore(model) == 3
    other = TrainingCheckpoint(tmp_path, every_seconds=0.0, inputs={"series": "def"})
    assert other.epochs_done() == 0
    with pytest.raises(UserFacingError, match="trained from other inputs.*remove that folder"):
        other.restore(model)
    (tmp_path / "checkpoint.json").write_text('{"epochs_done": 4}')  # written before inputs were recorded
    assert other.epochs_done() == 4 and other.restore(model) == 4


def test_a_kill_after_an_epochs_log_row_redoes_that_epoch_and_its_figure(tiny, monkeypatch):
    from stages import vision

    kill_after_epoch(monkeypatch, vision.ReconstructionFigures, 1)  # after epoch 2's log row and figure
    with pytest.raises(KeyboardInterrupt):
        train_vision(tiny("--vae_num_epoch", 2), "vae")
    monkeypatch.undo()
    checkpoint = json.loads((vision_dir(tiny(), "vae") / "checkpoint" / "checkpoint.json").read_text())
    assert checkpoint["epochs_done"] == 1  # the checkpoint is the epoch's last write: it did not record epoch 2
    train_vision(tiny("--vae_num_epoch", 2), "vae")
    assert [row["epoch"] for row in log_rows(tiny(), "vae")] == ["0", "1"]  # epoch 2 redone, its row once
    figures = vision_dir(tiny(), "vae") / "figures"
    assert sorted(path.name for path in figures.glob("reconstructions_epoch_*.png")) == [
        "reconstructions_epoch_001.png", "reconstructions_epoch_002.png"]


def test_an_episode_with_nan_actions_is_refused_before_training_writes_anything(tiny):
    config = tiny()
    [first, *_] = sorted((vision_dir(config, "vae").parent / "record").glob("episode_*.npz"))
    arrays = dict(np.load(first, allow_pickle=False))
    arrays["action"][3, 0] = np.nan
    np.savez_compressed(first, **arrays)
    with pytest.raises(UserFacingError, match=f"{first.name}: action holds NaN"):
        train_vision(config, "vae")
    assert not vision_dir(config, "vae").exists()



def test_an_episode_whose_frames_fail_their_checksum_stops_training_in_one_line(tiny):
    """Met while tf.data streams the training frames: the error names the file, as a refusal up front would."""
    config = tiny()
    training, _ = split_episodes(list_episodes(record_dir(config)), config.holdout_fraction, config.seed)
    corrupt_frames(training[0].path)
    with pytest.raises(UserFacingError, match=f"{training[0].path.name}: unreadable"):
        train_vision(config, "vae")


def test_the_published_vaegan_variant_table_is_regenerated_from_its_record():
    """docs/results.md's VAE/GAN variant table is what bench/vaegan_stability.py prints from its record in
    docs/runs/ (so a figure there cannot drift from its record)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import vaegan_stability

    record = json.loads((RUN_RECORDS / "vaegan_stability" / "record.json").read_text())
    published = (ROOT / "docs" / "results.md").read_text()
    assert vaegan_stability.table(record["rows"]) in published
    # the decoder's batch-norm measure, and its moving-statistics rows are the variant table's prior samples
    assert vaegan_stability.decoder_modes_table(record["decoder_modes"]) in published
    rows = {row["variant"]: row for row in record["rows"]}
    for name, measures in record["decoder_modes"].items():
        inference = measures[vaegan_stability.DECODER_MODES[0]]
        assert inference["frechet"] == pytest.approx(rows[name]["frechet_prior"], rel=1e-6)
        assert inference["noise"] == rows[name]["prior_noise_share"]


def test_the_published_laptop_scale_vision_table_is_regenerated_from_its_records():
    """The README's and docs/results.md's laptop-scale table (the laptop runs' vision_metrics.json, then the
    laptop-scale bench record) is what `vaegan_stability.py --from_runs ... --from_record ...` prints."""
    sys.path.insert(0, str(ROOT / "bench"))
    import vaegan_stability

    record = json.loads((RUN_RECORDS / "vaegan_stability_laptop" / "record.json").read_text())
    published = vaegan_stability.table(vaegan_stability.run_rows(
        [RUN_RECORDS / "laptop_vae_kl4", RUN_RECORDS / "laptop_vaegan_v2"]) + record["rows"])
    assert record["episodes"] == 100 and record["epochs"] == 3  # the laptop config's scale
    for document in ("README.md", "docs/results.md"):
        assert published in (ROOT / document).read_text(), document
