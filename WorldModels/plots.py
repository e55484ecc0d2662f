"""Figures, all through matplotlib's object API (no pyplot, no display): they save headless and
show in a notebook as they are."""

from matplotlib.figure import Figure

from files import atomic_path


def image_rows(rows, title=None, scale=1.2):
    """A grid with one labelled row of images per (label, uint8 images (n, H, W, 3)) pair."""
    columns = max(len(images) for _, images in rows)
    figure = Figure(figsize=(scale * columns, scale * len(rows) + (0.4 if title else 0.0)), layout="constrained")
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for row, (label, images) in enumerate(rows):
        for column in range(columns):
            axis = axes[row][column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column < len(images):
                axis.imshow(images[column])
            else:
                axis.set_axis_off()
        axes[row][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def save_figure(figure, path, dpi=100):
    """Write a figure atomically (PNG, or the format of the path's suffix); returns the path."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=dpi)
    return path
