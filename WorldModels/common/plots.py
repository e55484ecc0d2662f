"""Figures, all through matplotlib's object API (no pyplot, no display): they save headless and
show in a notebook as they are."""

import numpy as np
from matplotlib.figure import Figure

from common.files import atomic_path

GAP = 2  # white pixels between the images of a grid


def image_rows(rows, title=None, scale=1.2):
    """A grid with one labelled row of images per (label, uint8 images (n, H, W, 3)) pair.

    The grid is drawn as one image in one axes: a figure of many small axes takes ~1 s to lay out
    and save, which the training stages pay after every epoch."""
    columns = max(len(images) for _, images in rows)
    height, width = rows[0][1].shape[1:3]
    mosaic = np.full((len(rows) * (height + GAP) - GAP, columns * (width + GAP) - GAP, 3), 255, np.uint8)
    for row, (_, images) in enumerate(rows):
        for column, image in enumerate(images):
            top, left = row * (height + GAP), column * (width + GAP)
            mosaic[top:top + height, left:left + width] = image
    figure = Figure(figsize=(scale * columns + 1.2, scale * len(rows) + (0.4 if title else 0.0)), layout="constrained")
    axis = figure.subplots()
    axis.imshow(mosaic, interpolation="nearest")
    axis.set_xticks([])
    axis.set_yticks([row * (height + GAP) + height / 2 for row in range(len(rows))], [label for label, _ in rows],
                    fontsize=9)
    axis.tick_params(length=0)
    for spine in axis.spines.values():
        spine.set_visible(False)
    if title:
        axis.set_title(title, fontsize=10)
    return figure


def save_figure(figure, path, dpi=100):
    """Write a figure atomically (PNG, or the format of the path's suffix); returns the path."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=dpi)
    return path
