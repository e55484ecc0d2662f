"""The peers a researcher would otherwise use: the same ConvVAE and MDN-RNN training steps in PyTorch.

Same layers, sizes, losses and optimizer as vae/vae.py and rnn/rnn.py (Adam; the MDN-RNN's
gradients clipped per value), so frames/s and timesteps/s compare the frameworks, not the models.
PyTorch is optional: available() says whether it is installed, and the benchmarks skip these with
a message when it is not (pip install torch).
"""

import importlib.util
import math
import os


def available():
    return importlib.util.find_spec("torch") is not None


def _torch():
    import torch
    torch.set_num_threads(len(os.sched_getaffinity(0)))  # every core this process may use, as TensorFlow does
    return torch


def vae_step(frames, z_size=32, kl_tolerance=0.5, learning_rate=1e-4):
    """run(steps): the ConvVAE's training step in PyTorch on one in-memory batch (numpy frames
    (batch, 64, 64, 3) in [0, 1]), `steps` times; warmed up here."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(0)
    encoder = nn.Sequential(
        nn.Conv2d(3, 32, 4, 2), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
        nn.Conv2d(64, 128, 4, 2), nn.ReLU(), nn.Conv2d(128, 256, 4, 2), nn.ReLU(), nn.Flatten(),
        nn.Linear(1024, 2 * z_size))
    decoder = nn.Sequential(
        nn.Linear(z_size, 1024), nn.Unflatten(1, (1024, 1, 1)),
        nn.ConvTranspose2d(1024, 128, 5, 2), nn.ReLU(), nn.ConvTranspose2d(128, 64, 5, 2), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 6, 2), nn.ReLU(), nn.ConvTranspose2d(32, 3, 6, 2), nn.Sigmoid())
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()  # PyTorch's own layout, NCHW

    def step():
        mu, logvar = encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        reconstruction_loss = ((x - decoder(z)) ** 2).sum(dim=(1, 2, 3)).mean()
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(dim=1)
        loss = reconstruction_loss + torch.clamp(kl, min=kl_tolerance * z_size).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(3):
        step()
    return lambda steps: [step() for _ in range(steps)]


def mdnrnn_step(z, action, reward, rnn_size=256, num_mixture=5, learning_rate=1e-3, grad_clip=1.0):
    """run(steps): the MDN-RNN's training step (LSTM, mixture head, reward and done heads) in PyTorch
    on one in-memory batch of windows (numpy z (batch, W, z_size), action (batch, W, 3), reward
    (batch, W)), `steps` times; warmed up here."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(0)
    z_size = z.shape[-1]
    lstm = nn.LSTM(z_size + action.shape[-1], rnn_size, batch_first=True)
    heads = nn.Linear(rnn_size, z_size * num_mixture * 3 + 2)  # mixture, reward and done in one product
    parameters = [*lstm.parameters(), *heads.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    z, action, reward = (torch.from_numpy(array).float() for array in (z, action, reward))
    inputs, targets = torch.cat([z[:, :-1], action[:, :-1]], dim=-1), z[:, 1:]
    done = torch.zeros_like(reward[:, :-1])

    def step():
        hidden, _ = lstm(inputs)
        output = heads(hidden)
        mixture = output[..., :-2].reshape(*targets.shape, num_mixture * 3)
        logits, means, log_sigmas = mixture.chunk(3, dim=-1)
        log_weights = torch.log_softmax(logits, dim=-1)
        standardized = (targets[..., None] - means) * torch.exp(-log_sigmas)
        log_densities = -0.5 * standardized ** 2 - log_sigmas - 0.5 * math.log(2 * math.pi)
        z_nll = -torch.logsumexp(log_weights + log_densities, dim=-1).mean()
        reward_loss = ((output[..., -2] - reward[:, :-1]) ** 2).mean()
        done_loss = nn.functional.binary_cross_entropy_with_logits(output[..., -1], done)
        loss = z_nll + reward_loss + done_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(parameters, grad_clip)
        optimizer.step()
        return loss.item()

    for _ in range(3):
        step()
    return lambda steps: [step() for _ in range(steps)]
