"""Judge the trained vision models on the same held-out frames: reconstruction MSE, SSIM, sharpness,
a linear probe of what z knows about driving (speed R^2, on-road accuracy), and how real their
reconstructions and prior samples look to judges that no model under test trained.

    python WorldModels/evaluate_vision.py -c WorldModels/configs/smoke.config

Evaluates every trained model (vae, vaegan) on validation_frames frames spread over the held-out
episodes, prints one table and writes <vision>/vision_metrics.json. Sharpness is the variance of
the Laplacian of the reconstructions over that of the real frames (1.0: as sharp as the frames).
The probe (stages/vision_metrics.py: driving_probe) is fitted on training frames and scored on the held-out
ones; it needs episodes that record speed and on_road (extract.py writes them). Realism: the
Frechet distance to the held-out frames in a fixed random network's features, and the held-out
accuracy of a fresh classifier trained to tell them apart (0.5: it cannot), for the reconstructions,
as many decoded prior samples, and another set of real frames from training episodes (the floor;
stages/vision_metrics.py: realism). Where a vision
model's MDN-RNN is trained, its one-step predictions, decoded, are scored against the real next
frames of held-out episodes (stages/memory.py: prediction_pixel_errors): comparable across vision models.
"""

from common.config import for_vision, parse_config
from common.errors import exit_on_user_error


def format_table(results):
    """One row per vision model: reconstruction quality, the two collapse measures (diversity of the
    reconstructions and of decoded prior samples, over the frames' own), the driving probe, then the
    realism of reconstructions and prior samples (Frechet distance, two-sample accuracy) beside the
    floor: another set of real frames."""
    lines = [f"{'vision':<8} {'MSE':>9} {'SSIM':>7} {'sharpness':>10} {'diversity':>10} {'prior div':>10} "
             f"{'frames':>7} {'speed R2':>9} {'on-road acc (majority)':>23}"]
    realism = [f"{'vision':<8} {'Frechet: reconstructions':>25} {'prior':>8} {'real':>8} "
               f"{'two-sample acc: reconstructions':>32} {'prior':>7} {'real':>7}"]
    for vision, metrics in results.items():
        probe = (f"{metrics['speed_r2']:>9.3f} {metrics['on_road_accuracy']:>14.3f} ({metrics['on_road_majority']:.3f})"
                 if "speed_r2" in metrics else f"{'-':>9} {'-':>23}")
        lines.append(f"{vision:<8} {metrics['mse']:>9.5f} {metrics['ssim']:>7.3f} {metrics['sharpness']:>10.3f} "
                     f"{metrics['diversity']:>10.3f} {metrics['prior_diversity']:>10.3f} {metrics['frames']:>7} "
                     f"{probe}")
        realism.append(f"{vision:<8} {metrics['frechet_reconstruction']:>25.3g} {metrics['frechet_prior']:>8.3g} "
                       f"{metrics['frechet_real']:>8.3g} {metrics['two_sample_reconstruction']:>32.3f} "
                       f"{metrics['two_sample_prior']:>7.3f} {metrics['two_sample_real']:>7.3f}")
    return "\n".join(lines + [""] + realism)


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    # here, not at the top: a bad config is refused before TensorFlow starts
    from stages.memory import prediction_pixel_errors
    from stages.vision import evaluate_vision, load_vision_model, model_path

    results = evaluate_vision(config)
    print(format_table(results))
    for vision in results:
        vision_config = for_vision(config, vision)
        errors = prediction_pixel_errors(vision_config, load_vision_model(model_path(vision_config, vision)))
        if errors is not None:
            results[vision]["prediction_errors"] = errors
            print(f"{vision}: MDN-RNN one-step predictions decoded, pixel MSE on held-out episodes "
                  f"{errors['rnn']:.5f} (copying the last frame: {errors['copy_last']:.5f}; the vision model's "
                  f"reconstructions: {errors['reconstruction']:.5f})")
    return results


if __name__ == "__main__":
    with exit_on_user_error():
        main()
