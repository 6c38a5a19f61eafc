"""The analysis figures are legible where the report shows them, and none is drawn with nothing to show."""

import numpy as np
import pytest
from helpers_runs import write_run

from clipxai.analysis.analyze import AnalyzeOptions, analyze
from clipxai.analysis.check import synthetic
from clipxai.analysis.draw import figures
from clipxai.report.report import FIGURES
from clipxai.runs.load import load_run

COLUMN_PX = 1100          # the report's content column (document.CSS: max-width 1100px)
HALF_PX = (COLUMN_PX - 19) / 2


def _drawn(tmp_path, monkeypatch, traj, **options):
    """Analyse a synthetic run and keep every matplotlib figure it saves: name -> Figure."""
    kept = {}
    save = figures._save

    def keep(fig, folder, name, drawn):
        kept[name] = fig
        save(fig, folder, name, drawn)

    monkeypatch.setattr(figures, "_save", keep)
    run = load_run(write_run(tmp_path, "r", traj=traj, prompt="a red heart ❤️ 愛"))
    summary = analyze(run, AnalyzeOptions(labels=False, gif=False, **options)).write()
    return kept, summary


def _text_px(fig, shown_px: float) -> list[tuple[float, str]]:
    """Every text of ``fig`` as (size in screen pixels where the report shows it, text)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    width_in = fig.get_tightbbox(canvas.get_renderer()).width
    scale = shown_px / (width_in * 72)  # screen pixels per point
    return [(t.get_fontsize() * scale, t.get_text()) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip()]


@pytest.fixture(scope="module")
def switching(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        traj = synthetic.planted_states(np.random.default_rng(3), n=120, k=3, dim=64, mean_dwell=12, min_dwell=4,
                                        noise=0.4)
        yield _drawn(tmp_path_factory.mktemp("fig"), mp, traj)
    finally:
        mp.undo()


def test_text_is_at_least_10_px_at_the_size_the_report_shows_each_figure(switching):
    kept, _ = switching
    sizes = {name: size for name, _, size in FIGURES}
    assert {"states", "transitions", "dwell_survival", "trajectory_pca", "activations", "loss_terms"} <= set(kept)
    for name, fig in kept.items():
        shown = HALF_PX if sizes[name] == "half" else COLUMN_PX
        small = [(round(px, 1), t) for px, t in _text_px(fig, shown) if px < 10]
        assert small == [], f"{name}: {small}"


def test_integer_axes_have_integer_ticks_and_projections_say_their_variance(switching):
    kept, summary = switching
    ax = kept["states"].axes[0]
    assert all(float(v).is_integer() for v in ax.get_yticks())
    t = kept["transitions"].axes[0]
    assert list(t.get_xticks()) == [0, 1, 2] and list(t.get_yticks()) == [0, 1, 2]
    m = kept["model_selection"].axes[0]
    assert all(float(v).is_integer() for v in m.get_xticks())
    ratio = summary["analysis"]["projections"]["pca"]["explained_variance"]
    p = kept["trajectory_pca"].axes[0]
    assert p.get_xlabel() == f"PC1 ({100 * ratio[0]:.0f}% of the variance)"
    assert p.get_ylabel() == f"PC2 ({100 * ratio[1]:.0f}% of the variance)"
    assert "1 switches" not in " ".join(ax.get_title(loc="left") for f in kept.values() for ax in f.axes)


def test_transition_counts_are_legible_on_dark_cells(switching):
    kept, _ = switching
    ax = kept["transitions"].axes[0]
    image = ax.images[0]
    for label in ax.texts:
        x, y = label.get_position()
        shade = image.cmap(image.norm(image.get_array()[int(round(y)), int(round(x))]))
        light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2]
        assert label.get_color() == ("black" if light > 0.5 else "white")


def test_loss_that_mirrors_the_similarity_is_left_out(switching):
    kept, summary = switching
    # the helper logs loss = -similarity and one cosine term = similarity; only the tv term is new
    titles = [ax.get_title(loc="left") for ax in kept["loss_terms"].axes]
    assert titles == ["tv"]
    assert "left out" in kept["loss_terms"].get_suptitle() and "loss" in kept["loss_terms"].get_suptitle()


def test_one_state_run_draws_no_empty_charts_and_no_embedding_of_a_handful(tmp_path, monkeypatch):
    traj = synthetic.single_state(np.random.default_rng(0), n=12, dim=64, noise=0.3)
    kept, summary = _drawn(tmp_path, monkeypatch, traj, projections=("pca", "tsne"))
    assert summary["n_states"] == 1
    for name in ("states", "dwell_survival", "transitions", "switch_rate_windows", "trajectory_tsne"):
        assert name not in kept and name not in summary["figures"] and summary["figures_skipped"][name]
    assert "12 snapshots are too few" in summary["figures_skipped"]["trajectory_tsne"]
    assert "tsne" in summary["analysis"]["projections"]  # computed all the same: only the picture is left out
    assert {"trajectory_pca", "model_selection", "dynamics"} <= set(kept)
