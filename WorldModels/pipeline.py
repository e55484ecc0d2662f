"""Run the whole pipeline for a config: extract -> vision -> series -> MDN-RNN -> controller -> evaluation.

    python WorldModels/pipeline.py -c WorldModels/configs/smoke.config [--vision vae|vaegan|both]

Every stage is the function its own script calls (extract.py, vae_train.py / vaegan_train.py,
series.py, rnn_train.py, train.py, evaluate.py), in that order, for one vision model or both on
the same rollouts. A stage whose outputs are complete for this config is skipped, so a rerun
after a kill continues where it stopped; a stage whose folder was made with other settings is
refused, as its script refuses it. When the vision model has changed (trained on to more epochs,
say) and its series is re-encoded, the MDN-RNN and the controllers built on the old one are moved
to <vision>/stale/<time>/ (said in one line; nothing is deleted) and built again. After each
stage one status line says what happened and where the outputs are. With --vision both,
compare.py's report.md ends the run. With controller_init=dream, CMA-ES runs in the dream first
(<vision>/controller_dream/) and the real run starts from its best controller (<vision>/controller_warm/).

Each stage's wall time (summed over the runs that worked on it) is kept in stage_times.json in
its folder (record/, <vision>/, and <vision>/controller/, controller_dream/ or controller_warm/, with
_seed<k> for controller_seed=k), for the report.
"""

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from common.config import VISIONS, for_vision, parse_config
from common.errors import exit_on_user_error
from common.files import set_aside
from common.layout import (
    best_controller_path,
    cma_checkpoint_path,
    controller_dir,
    experiment_dir,
    model_path,
    record_dir,
    rnn_path,
    series_path,
    summary_path,
    vision_dir,
)


class Stage(NamedTuple):
    """One step of the pipeline: what it is called, where it works, and how to check and run it."""
    name: str  # e.g. "vae MDN-RNN"
    folder: Path  # where its wall time is kept (stage_times.json)
    time_key: str  # its entry there
    complete: Callable[[], bool]  # are its outputs complete for this config?
    run: Callable[[], object]  # make them (resuming a killed run)
    outputs: Path  # shown in the status line


def plan(config, visions):
    """The stages for `visions`, in order (a list of Stage)."""
    # here, not at the top: pipeline.py refuses a bad config before TensorFlow starts
    from stages.evaluation import best_evaluated, evaluate_best
    from stages.evolution import controller_trained, dream_config
    from stages.memory import encode_series, memory_measured, series_up_to_date
    from stages.rollouts import extract, extracted
    from stages.vision import train_vision, vision_trained

    stages = [Stage("extract", record_dir(config), "extract", lambda: extracted(config), lambda: extract(config),
                    record_dir(config))]
    settings = [for_vision(config, vision) for vision in visions]
    for s in settings:  # every vision model first: the VAE/GAN's figures show the VAE's reconstructions too
        stages.append(Stage(f"{s.vision} vision", vision_dir(s), "vision", lambda s=s: vision_trained(s, s.vision),
                            lambda s=s: train_vision(s, s.vision), model_path(s, s.vision)))
    for s in settings:
        best = best_controller_path(s)
        stages += [
            Stage(f"{s.vision} series", vision_dir(s), "series", lambda s=s: series_up_to_date(s),
                  lambda s=s: encode_series(s), series_path(s)),
            Stage(f"{s.vision} MDN-RNN", vision_dir(s), "rnn", lambda s=s: memory_measured(s),
                  lambda s=s: rebuild_memory(s), rnn_path(s)),
        ]
        if s.controller_init == "dream":  # the dream warm start: CMA-ES in the dream first
            dream = dream_config(s)
            # once the real run has started from it, the dream run is left as it is (a longer dream would
            # change the start and the real run would be refused)
            stages.append(Stage(f"{s.vision} dream controller", controller_dir(dream), "controller",
                                lambda d=dream, s=s: controller_trained(d) or cma_checkpoint_path(s).exists(),
                                lambda d=dream: rebuild_controller(d), best_controller_path(dream)))
        stages += [
            Stage(f"{s.vision} controller", best.parent, "controller", lambda s=s: controller_trained(s),
                  lambda s=s: rebuild_controller(s), best),
            Stage(f"{s.vision} evaluation", best.parent, "evaluation", lambda s=s: best_evaluated(s) is not None,
                  lambda s=s: evaluate_best(s), summary_path(best, s.env_backend)),
        ]
    return stages


def rebuild_memory(config):
    """The MDN-RNN stage: an MDN-RNN trained on an earlier series.npz (its vision model retrained since, and
    the series re-encoded, by this pipeline or by hand) is set aside with every controller of that world
    model, nothing deleted, and trained afresh."""
    from stages.memory import memory_outputs, memory_stale, train_memory

    if memory_stale(config):
        folder = vision_dir(config)
        set_aside([*memory_outputs(config), *sorted(folder.glob("controller*"))], folder,
                  f"the {config.vision} MDN-RNN was trained on an earlier series.npz (its vision model has changed)")
    return train_memory(config)


def rebuild_controller(config):
    """The controller stage: a CMA-ES run made with another world model is set aside, then CMA-ES trains afresh."""
    from stages.evolution import controller_stale, train_controller

    if controller_stale(config):
        folder = controller_dir(config)
        set_aside([folder], folder.parent, f"{folder.name} was trained with another world model")
    return train_controller(config)


def run_pipeline(config, visions):
    """Run (or skip, if complete) every stage for `visions`; returns [(stage, status, outputs)]."""
    from stages.report import add_stage_time, write_report

    stages, statuses, started = plan(config, visions), [], time.monotonic()
    for number, stage in enumerate(stages, start=1):
        if stage.complete():
            status = "complete, skipped"
        else:
            print(f"\n== [{number}/{len(stages)}] {stage.name} ==", flush=True)
            begun = time.monotonic()
            try:
                stage.run()
            finally:  # a failed or interrupted run's time counts too: the stage's total is what it cost
                if stage.folder.exists():
                    add_stage_time(stage.folder, stage.time_key, time.monotonic() - begun)
            status = f"done in {time.monotonic() - begun:.0f} s"
        statuses.append((stage.name, status, stage.outputs))
        print(f"[{number}/{len(stages)}] {stage.name:<20} {status:<18} {stage.outputs}", flush=True)
    if set(visions) == set(VISIONS):
        report = write_report(config)
        statuses.append(("report", "written", report))
        print(f"[report] VAE vs VAE/GAN: {report}")
    print(f"pipeline finished in {time.monotonic() - started:.0f} s; outputs under {experiment_dir(config)}")
    return statuses


def take_vision_both(argv):
    """pipeline.py's --vision also takes `both`, which no single stage does: (argv without it, visions or None)."""
    for index, argument in enumerate(argv):
        if argument == "--vision=both" or (argument == "--vision" and argv[index + 1:index + 2] == ["both"]):
            width = 1 if "=" in argument else 2
            return argv[:index] + argv[index + width:], list(VISIONS)
    return argv, None


def main(argv=None):
    argv, visions = take_vision_both([str(argument) for argument in (sys.argv[1:] if argv is None else argv)])
    config = parse_config(argv, description=__doc__.split("\n\n")[0] + " --vision also takes 'both'.")
    return run_pipeline(config, visions or [config.vision])


if __name__ == "__main__":
    with exit_on_user_error():
        main()
