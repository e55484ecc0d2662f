"""The VAE/GAN's named choices, in one place that does not import TensorFlow, so that the config
parser (common/config.py) offers exactly what vaegan.py builds."""

GENERATOR_LOSSES = ("minimax", "non_saturating")  # the decoder's GAN term
PASSES = ("two", "one")  # decoder passes per step: the authors' two, or one serving both losses
DISCRIMINATORS = ("larsen", "strided")  # the authors' discriminator, or four plain stride-2 convolutions
DECODERS = ("world_models", "larsen")  # the ConvVAE's decoder, or the authors' generator
DECODER_NORMALISATIONS = ("batch", "layer")  # the larsen decoder's: the authors' batch norm, or per-image layer norm
