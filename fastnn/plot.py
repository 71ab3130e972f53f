"""Training curves: ``fastnn.plot_history(history, "loss.png")``.

matplotlib is an optional extra (``pip install fastnn[plot]``), imported on
the first call only. The figure is drawn on matplotlib's Agg canvas directly
(no pyplot), so plotting never changes the backend of the caller's
matplotlib session (a notebook keeps its inline plots).
"""

__all__ = ["plot_history"]

_TRAIN, _VAL = "#1f77b4", "#d62728"


def _import_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError("plot_history needs matplotlib: pip install 'fastnn[plot]' "
                          "(or pip install matplotlib)") from None
    return Figure, FigureCanvasAgg, MaxNLocator


def plot_history(history, path=None, title=None, dpi=120):
    """Draw loss (and accuracy, and the learning rate when it changed) per epoch.

    Args:
        history: the :class:`~fastnn.History` that ``fit`` returns, or its
            ``history.history`` dict ({"loss": [...], "val_loss": [...], ...}).
        path: image file to write (the format follows the extension: .png,
            .svg, .pdf, ...); None only returns the figure.
        title: figure title (default "Training history").
        dpi: resolution of raster images.

    One panel per metric: "loss", then "accuracy" when present, each with the
    training curve and, when recorded, the validation curve ("val_" keys),
    the best validation epoch marked; a log-scale "lr" panel is added when
    the learning rate changed during training (a schedule). Epochs are
    numbered from 1.

    Returns:
        the ``matplotlib.figure.Figure``.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs.get("loss"):
        raise ValueError("plot_history needs a History (or its .history dict) with a "
                         "non-empty 'loss' list; train for at least one epoch")
    Figure, FigureCanvasAgg, MaxNLocator = _import_matplotlib()
    panels = ["loss"] + [k for k in ("accuracy",) if logs.get(k)]
    lrs = logs.get("lr") or []
    if len(set(lrs)) > 1:
        panels.append("lr")
    fig = Figure(figsize=(5.2 * len(panels), 4.2), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title or "Training history", fontsize=13, fontweight="bold")
    for ax, key in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        train = logs[key]
        epochs = range(1, len(train) + 1)
        marker = "o" if len(train) <= 30 else None
        if key == "lr":
            ax.plot(epochs, train, color="#2ca02c", marker=marker, ms=3, lw=2)
            ax.set_yscale("log")
            ax.set_title("Learning rate")
            ax.set_ylabel("learning rate")
        else:
            ax.plot(epochs, train, color=_TRAIN, marker=marker, ms=3, lw=2, label="train")
            val = logs.get("val_" + key)
            if val:
                ax.plot(range(1, len(val) + 1), val, color=_VAL, marker=marker, ms=3, lw=2,
                        ls="--", label="validation")
                best = (max if key == "accuracy" else min)(range(len(val)),
                                                           key=val.__getitem__)
                ax.plot(best + 1, val[best], "*", color=_VAL, ms=13, zorder=3,
                        label=f"best validation: {val[best]:.4g} (epoch {best + 1})")
            ax.set_title("Loss" if key == "loss" else "Accuracy")
            ax.set_ylabel(key)
            ax.legend(loc="best", frameon=True)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    if path is not None:
        fig.savefig(path)
    return fig
