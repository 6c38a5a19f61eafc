"""Text in pictures: the prompt's emoji and non-Latin words are drawn (never empty boxes), labels wrap."""

import io
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from clipxai.analysis.draw import text
from clipxai.analysis.draw.sheets import animated_gif, contact_sheet

NOWHERE = "\U0010FFFD"  # a private-use character no font draws


def _ink(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB")).astype(int)


def _box_of_missing_glyph(size: int) -> np.ndarray:
    im = Image.new("RGB", (40, 30), "white")
    ImageDraw.Draw(im).text((2, 2), NOWHERE, font=ImageFont.truetype(text.base_font(), size), fill="black")
    return _ink(im)


@pytest.fixture()
def without_emoji_font(monkeypatch):
    monkeypatch.setenv("CLIPXAI_EMOJI_FONT", "/nonexistent/emoji.ttf")
    text.color_emoji_font.cache_clear()
    text._emoji_tile.cache_clear()
    yield
    monkeypatch.undo()
    text.color_emoji_font.cache_clear()
    text._emoji_tile.cache_clear()


def test_plain_drops_selectors_and_names_what_no_font_has():
    assert text.plain("❤️") == "❤"  # the variation selector is dropped; DejaVu Sans has the heart itself
    assert text.plain("love ❤️ ring") == "love ❤ ring"
    assert text.plain(f"a{NOWHERE}b") == "aU+10FFFDb"  # never an empty box


def test_the_heart_is_drawn_not_a_box():
    im = Image.new("RGB", (40, 30), "white")
    width = text.draw_text(im, (2, 2), "❤️", 16)
    ink = _ink(im)
    assert width > 5 and (ink < 250).any()
    assert not np.array_equal(ink, _box_of_missing_glyph(16))
    if text.color_emoji_font():  # a colour emoji font is installed: the heart is red
        red = (ink[..., 0] > 150) & (ink[..., 1] < 100) & (ink[..., 2] < 100)
        assert red.sum() > 20


def test_without_a_colour_emoji_font_the_outline_heart_is_drawn(without_emoji_font):
    assert text.color_emoji_font() is None
    im = Image.new("RGB", (40, 30), "white")
    assert text.draw_text(im, (2, 2), "❤️", 16) > 5
    ink = _ink(im)
    assert (ink < 100).all(axis=2).any()  # black outline glyph
    assert not np.array_equal(ink, _box_of_missing_glyph(16))


def test_labels_wrap_at_words_instead_of_being_cut():
    label = "state 1: pink, mouth, ring, ❤️"
    lines = text.wrap(label, 11, 70, max_lines=5)
    assert len(lines) > 1 and " ".join(lines) == label
    assert all(text.text_width(line, 11) <= 70 for line in lines)
    assert text.wrap("a verylongwordwithoutspaces", 11, 40, max_lines=6)[1:]  # cut only inside a word too long
    short = text.wrap(label, 11, 70, max_lines=2)
    assert len(short) == 2 and short[-1].endswith("…")


def test_figure_labels_wrap_at_words():
    assert text.label("0: pink, mouth, ring, ❤️", 12) == "0: pink,\nmouth, ring…"
    assert text.label("0: pink, mouth", 12) == "0: pink,\nmouth"
    assert text.label("short", 12) == "short"


def test_contact_sheet_draws_words_and_emoji_on_wrapped_lines():
    images = np.stack([np.full((3, 16, 16), v, np.float32) for v in (0.2, 0.8)])
    names = {0: "pink, mouth, ring, ❤️"}
    one_line = contact_sheet(images, [0, 10], [0, 1], np.zeros(2, int), {0: "red"}, size=32)
    wrapped = contact_sheet(images, [0, 10], [0, 1], np.zeros(2, int), names, size=32)
    assert wrapped.size[1] > one_line.size[1]  # more lines, not a cut label
    if text.color_emoji_font():
        ink = _ink(wrapped)
        caption = ink[40:]
        assert ((caption[..., 0] > 150) & (caption[..., 1] < 90) & (caption[..., 2] < 90)).sum() > 10


def test_gif_frames_are_large_enough_to_read(tmp_path):
    images = np.random.default_rng(0).random((4, 3, 16, 16)).astype(np.float32)
    path = animated_gif(images, [0, 10, 20, 30], tmp_path / "a.gif", np.array([0, 0, 1, 1]),
                        names={0: "red ❤️", 1: "ring"})
    with Image.open(path) as im:
        assert im.n_frames == 4 and im.size[0] >= 192
        im.seek(0)
        band = np.asarray(im.convert("L"))[:20]
    assert (band < 128).sum() > 50  # the caption is there, in dark text on white


def test_figures_draw_every_character_without_missing_glyphs():
    from matplotlib.figure import Figure

    from clipxai.analysis.draw.style import figure_style

    label = "❤️ 愛 любовь"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        with figure_style([label]):
            fig = Figure()
            fig.add_subplot().set_title(text.plain(label))
            fig.savefig(io.BytesIO(), format="png")
