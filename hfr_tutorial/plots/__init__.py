"""Figures of the tutorial: they only draw what they are given (embeddings, scores, tables, a model's modules).

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``: a
notebook shows the returned figure, a script saves it with ``fig.savefig(...)``.  Figures are built
without pyplot's global state on an Agg canvas, so the same inputs give the same pixels, and no
function of the library selects a matplotlib backend.  Each modality and each run keeps one colour in
every figure: the colours are :mod:`hfr_tutorial.palette`'s (``MODALITY_COLORS``, ``run_color``), imported
from there, never from here.  A function given nothing to draw raises a ValueError
that names the argument and what it expects.

One concept per module:

* :mod:`~hfr_tutorial.plots.style`: rc settings, pyplot-free figures, labels in words;
* :mod:`~hfr_tutorial.plots.verification`: ROC, DET, CMC, genuine/impostor histograms;
* :mod:`~hfr_tutorial.plots.embeddings`: 2-D maps (coordinates from :mod:`hfr_tutorial.projection`)
  and similarity matrices;
* :mod:`~hfr_tutorial.plots.training`: training curves, parameter budget, metric bars, data efficiency;
* :mod:`~hfr_tutorial.plots.images`: grids of face images;
* :mod:`~hfr_tutorial.plots.diagrams`: the architecture (read by :mod:`hfr_tutorial.models.architecture`),
  the method's data flow, the normalisation axes.

The names below are the package's drawing API, what the notebooks import
(``from hfr_tutorial.plots import plot_roc``).  Taught from ``notebooks/00_data_and_modality_gap.ipynb``
to ``notebooks/07_real_edgeface.ipynb``.
"""
from hfr_tutorial.plots.diagrams import (FROZEN_COLOR, LAYERNORM_HATCH, NORMALISATION_AXES, PARTLY_TRAINED_COLOR,
                                         normalisation_members, plot_edgeface_architecture, plot_method_flow,
                                         plot_normalisation_axes)
from hfr_tutorial.plots.embeddings import (OUTLIER_FENCE, embedding_panels, plot_similarity_matrix, plot_umap,
                                           robust_limits)
from hfr_tutorial.plots.images import plot_image_grid
from hfr_tutorial.plots.style import (GENUINE_COLOR, IMPOSTOR_COLOR, TRAINED_COLOR, metric_label, new_figure,
                                      protocol_color, styled)
from hfr_tutorial.plots.training import (DATA_EFFICIENCY_MODELS, plot_data_efficiency, plot_metric_bars,
                                         plot_parameter_budget, plot_training_curves)
from hfr_tutorial.plots.verification import (DET_TICKS, NormalDeviateLocator, draw_score_histogram, plot_cmc,
                                             plot_det, plot_roc, plot_score_histograms, score_pairs,
                                             set_normal_deviate_axis)

__all__ = [
    "DATA_EFFICIENCY_MODELS", "DET_TICKS", "FROZEN_COLOR", "GENUINE_COLOR", "IMPOSTOR_COLOR", "LAYERNORM_HATCH",
    "NORMALISATION_AXES", "OUTLIER_FENCE", "PARTLY_TRAINED_COLOR",
    "TRAINED_COLOR", "NormalDeviateLocator", "draw_score_histogram", "embedding_panels", "metric_label",
    "new_figure", "normalisation_members", "plot_cmc", "plot_data_efficiency",
    "plot_det", "plot_edgeface_architecture", "plot_image_grid", "plot_method_flow", "plot_metric_bars",
    "plot_normalisation_axes", "plot_parameter_budget", "plot_roc", "plot_score_histograms",
    "plot_similarity_matrix", "plot_training_curves", "plot_umap", "protocol_color", "robust_limits",
    "score_pairs", "set_normal_deviate_axis", "styled",
]
