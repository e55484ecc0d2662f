"""Judge the trained vision models on the same held-out frames: reconstruction MSE, SSIM, sharpness,
a linear probe of what z knows about driving (speed R^2, on-road accuracy), and how real their
reconstructions and prior samples look to judges that no model under test trained.

    python WorldModels/evaluate_vision.py -c WorldModels/configs/smoke.config

Evaluates every trained model (vae, vaegan) on validation_frames frames spread over the held-out
episodes, prints one table and writes <vision>/vision_metrics.json, and draws held-out frames, every
model's reconstructions and its decoded prior samples (the same z for each) in one figure,
<exp_name>/<env_name>/vae_vs_vaegan.png. Sharpness is the variance of
the Laplacian of the reconstructions over that of the real frames (1.0: as sharp as the frames).
The probe (stages/vision_metrics.py: driving_probe) is fitted on training frames and scored on the held-out
ones; it needs episodes that record speed and on_road (extract.py writes them). Realism, against
as many real frames of training episodes: the Frechet distance in a fixed random network's features,
and the held-out accuracy of a fresh classifier trained to tell a set from them (0.5: it cannot), for
the held-out frames themselves (the floor), their reconstructions and as many decoded prior samples,
and in the same features their precision (the share of them that fall among real frames: noise
samples do not) and recall (the share of real frames they cover: a model that never draws the road
misses those) (stages/vision_metrics.py: realism, precision_recall); the share of prior samples
that is static (noise_share) and their share of road pixels beside the real frames' (road_share). Where a vision
model's MDN-RNN is trained, its one-step predictions, decoded, are scored against the real next
frames of held-out episodes (stages/memory.py: prediction_pixel_errors): comparable across vision models.
"""

from common.config import for_vision, parse_config
from common.errors import exit_on_user_error
from common.layout import model_path


def format_table(results):
    """One row per vision model: reconstruction quality, the two collapse measures (diversity of the
    reconstructions and of decoded prior samples, over the frames' own), the driving probe, then the
    realism of reconstructions and prior samples (Frechet distance, two-sample accuracy) beside the
    floor: another set of real frames; then their precision (share of samples inside the real frames'
    manifold) and recall (share of real frames inside the samples'), the share of prior samples that
    is noise and their share of road pixels beside the held-out frames'."""
    lines = [f"{'vision':<8} {'MSE':>9} {'SSIM':>7} {'sharpness':>10} {'diversity':>10} {'prior div':>10} "
             f"{'frames':>7} {'speed R2':>9} {'on-road acc (majority)':>23}"]
    realism = [f"{'vision':<8} {'Frechet: reconstructions':>25} {'prior':>8} {'real':>8} "
               f"{'two-sample acc: reconstructions':>32} {'prior':>7} {'real':>7}"]
    coverage = [f"{'vision':<8} {'precision: reconstructions':>27} {'prior':>7} {'real':>7} "
                f"{'recall: reconstructions':>24} {'prior':>7} {'real':>7} {'prior noise':>12} "
                f"{'road: prior':>12} {'frames':>7}"]
    for vision, metrics in results.items():
        probe = (f"{metrics['speed_r2']:>9.3f} {metrics['on_road_accuracy']:>14.3f} ({metrics['on_road_majority']:.3f})"
                 if "speed_r2" in metrics else f"{'-':>9} {'-':>23}")
        lines.append(f"{vision:<8} {metrics['mse']:>9.5f} {metrics['ssim']:>7.3f} {metrics['sharpness']:>10.3f} "
                     f"{metrics['diversity']:>10.3f} {metrics['prior_diversity']:>10.3f} {metrics['frames']:>7} "
                     f"{probe}")
        realism.append(f"{vision:<8} {metrics['frechet_reconstruction']:>25.3g} {metrics['frechet_prior']:>8.3g} "
                       f"{metrics['frechet_real']:>8.3g} {metrics['two_sample_reconstruction']:>32.3f} "
                       f"{metrics['two_sample_prior']:>7.3f} {metrics['two_sample_real']:>7.3f}")
        coverage.append(f"{vision:<8} {metrics['precision_reconstruction']:>27.3f} {metrics['precision_prior']:>7.3f} "
                        f"{metrics['precision_real']:>7.3f} {metrics['recall_reconstruction']:>24.3f} "
                        f"{metrics['recall_prior']:>7.3f} {metrics['recall_real']:>7.3f} "
                        f"{metrics['prior_noise_share']:>12.3f} {metrics['road_share_prior']:>12.3f} "
                        f"{metrics['road_share_real']:>7.3f}")
    return "\n".join(lines + [""] + realism + [""] + coverage)


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    # here, not at the top: a bad config is refused before TensorFlow starts
    from stages.memory import prediction_pixel_errors, world_model_mismatch
    from stages.vision import comparison_figure, evaluate_vision, load_vision_model

    results = evaluate_vision(config)
    models = {vision: load_vision_model(model_path(config, vision), config.z_size) for vision in results}
    print(f"held-out frames, reconstructions and prior samples: {comparison_figure(config, models)}")
    print(format_table(results))
    for vision, model in models.items():
        errors = prediction_pixel_errors(for_vision(config, vision), model)
        mismatch = world_model_mismatch(for_vision(config, vision))
        if mismatch:  # the vision measures stand; M's predictions of this V's latents cannot be measured
            print(f"{vision}: MDN-RNN one-step predictions not measured: {mismatch}")
        if errors is not None:
            results[vision]["prediction_errors"] = errors
            print(f"{vision}: MDN-RNN one-step predictions decoded, pixel MSE on held-out episodes "
                  f"{errors['rnn']:.5f} (copying the last frame: {errors['copy_last']:.5f}; the vision model's "
                  f"reconstructions: {errors['reconstruction']:.5f})")
    return results


if __name__ == "__main__":
    with exit_on_user_error():
        main()
