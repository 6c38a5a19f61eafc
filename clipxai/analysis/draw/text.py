"""Text in pictures: the prompt's emoji and non-Latin words are drawn, never empty boxes.

Matplotlib ships DejaVu Sans, which covers Latin, Greek, Cyrillic and many symbols (❤, ★ and
most emoji in outline); it is the first font everywhere. Characters it lacks are looked up in
the machine's own fonts (CJK, Arabic, Devanagari, ... wherever installed). In PIL images
(contact sheets, GIF and video captions) emoji are drawn in colour when a colour emoji font is
installed (Debian: ``fonts-noto-color-emoji``). A variation selector is dropped where the font
lacks it, and a character no font has is written as ``U+XXXX`` rather than as a box. Long
labels wrap onto further lines instead of being cut.
"""

from __future__ import annotations

import contextlib
import os
import unicodedata
from functools import lru_cache
from pathlib import Path

# zero-width characters that only steer how the character before them looks
VARIATION_SELECTORS = frozenset(range(0xFE00, 0xFE10))
JOINERS = frozenset({0x200D, 0x200C})
EMOJI_FONT_NAMES = ("NotoColorEmoji.ttf", "NotoColorEmoji-Regular.ttf", "AppleColorEmoji.ttc", "seguiemj.ttf",
                    "TwemojiMozilla.ttf", "JoyPixels.ttf")
EMOJI_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts",
              "/System/Library/Fonts", "/Library/Fonts", "C:/Windows/Fonts")
COLOR_STRIKE = 109  # the one bitmap size of Noto Color Emoji; drawn there, then scaled


# -- which font has which character --------------------------------------------------------------

@lru_cache(maxsize=None)
def _cmap(path: str) -> frozenset[int]:
    """The characters a font file maps (first face of a collection); empty when unreadable."""
    from fontTools.ttLib import TTFont  # noqa: PLC0415  (matplotlib depends on fontTools)

    try:
        with TTFont(path, lazy=True, fontNumber=0) as font:
            return frozenset(font.getBestCmap() or {})
    except Exception:  # noqa: BLE001  (a broken system font is skipped, not fatal)
        return frozenset()


def _is_color_font(path: str) -> bool:
    from fontTools.ttLib import TTFont  # noqa: PLC0415

    try:
        with TTFont(path, lazy=True, fontNumber=0) as font:
            return any(t in font for t in ("CBDT", "sbix", "COLR"))
    except Exception:  # noqa: BLE001
        return True  # unreadable: never hand it to a renderer


@lru_cache(maxsize=1)
def base_font() -> str:
    """DejaVu Sans from matplotlib's own data: present wherever clipxai is installed."""
    import matplotlib  # noqa: PLC0415

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


@lru_cache(maxsize=1)
def _system_fonts() -> tuple[str, ...]:
    """Outline fonts of the machine, regular weights first (scanned once, only when needed)."""
    from matplotlib import font_manager  # noqa: PLC0415

    paths = set(font_manager.findSystemFonts(fontext="ttf")) | set(font_manager.findSystemFonts(fontext="otf"))
    for folder in EMOJI_DIRS:
        root = Path(folder).expanduser()
        if root.is_dir():
            paths |= {str(p) for p in root.rglob("*.tt[fc]")}
    regular = sorted(p for p in paths if "regular" in Path(p).name.lower())
    rest = sorted(p for p in paths if p not in regular and not any(
        w in Path(p).name.lower() for w in ("bold", "italic", "oblique", "light", "thin", "black")))
    return tuple(p for p in regular + rest if p != base_font())


@lru_cache(maxsize=4096)
def outline_font_for(char: str) -> str | None:
    """The first outline font that has ``char``: DejaVu Sans, else a system font; None if none."""
    code = ord(char)
    if code in _cmap(base_font()):
        return base_font()
    for path in _system_fonts():
        if code in _cmap(path) and not _is_color_font(path):
            return path
    return None


@lru_cache(maxsize=1)
def color_emoji_font() -> str | None:
    """A colour emoji font file PIL can draw (``CLIPXAI_EMOJI_FONT`` wins), or None."""
    wanted = os.environ.get("CLIPXAI_EMOJI_FONT")
    if wanted:
        return wanted if Path(wanted).is_file() else None
    for folder in EMOJI_DIRS:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for name in EMOJI_FONT_NAMES:
            hits = sorted(root.rglob(name))
            if hits:
                return str(hits[0])
    return None


def _is_emoji(text: str, i: int) -> bool:
    """Whether the character at ``i`` should be drawn as a colour emoji."""
    code = ord(text[i])
    if code < 0x2000:
        return False
    path = color_emoji_font()
    if path is None or code not in _cmap(path):
        return False
    selected = i + 1 < len(text) and ord(text[i + 1]) == 0xFE0F
    return selected or code >= 0x1F000 or 0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF


def _missing(char: str) -> str:
    return f"U+{ord(char):04X}"


def plain(text: str) -> str:
    """``text`` as the outline fonts can draw it: selectors and joiners no font needs dropped,
    characters no font has written as U+XXXX. For matplotlib labels (see ``figure_fonts``)."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if code in VARIATION_SELECTORS or code in JOINERS:
            continue  # DejaVu maps U+FE0F but draws nothing for it; other fonts may lack it
        if unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\n\t":
            continue
        out.append(ch if ch in "\n\t" or outline_font_for(ch) else _missing(ch))
    return "".join(out)


def label(text: str, width: int = 28, lines: int = 2) -> str:
    """A figure label: ``plain`` text wrapped at words onto at most ``lines`` lines of ``width``
    characters; only what does not fit even then ends in "…"."""
    import textwrap  # noqa: PLC0415

    parts = textwrap.wrap(plain(text), width, break_long_words=True) or [""]
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][: width - 1].rstrip(" ,") + "…"
    return "\n".join(parts)


def figure_fonts(texts=()) -> list[str]:
    """Matplotlib font families, DejaVu Sans first, then those needed for ``texts``."""
    from matplotlib import font_manager  # noqa: PLC0415

    families = ["DejaVu Sans"]
    for ch in {c for t in texts for c in str(t) if ord(c) > 0x7F}:
        path = outline_font_for(ch)
        if path and path != base_font():
            try:
                font_manager.fontManager.addfont(path)
                name = font_manager.FontProperties(fname=path).get_name()
            except Exception:  # noqa: BLE001
                continue
            if name not in families:
                families.append(name)
    return families


# -- drawing in PIL images ------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _pil_font(path: str, size: int):
    from PIL import ImageFont  # noqa: PLC0415

    return ImageFont.truetype(path, size)


def _runs(text: str) -> list[tuple[str, str]]:
    """(kind, text) pieces: kind is a font path, or "emoji" for one colour emoji."""
    pieces: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        code = ord(ch)
        if code in VARIATION_SELECTORS or code in JOINERS:
            i += 1
            continue
        if _is_emoji(text, i):
            pieces.append(("emoji", ch))
            i += 1
            continue
        path = outline_font_for(ch)
        piece = ch if path else _missing(ch)
        path = path or base_font()
        if pieces and pieces[-1][0] == path:
            pieces[-1] = (path, pieces[-1][1] + piece)
        else:
            pieces.append((path, piece))
        i += 1
    return pieces


@lru_cache(maxsize=256)
def _emoji_tile(char: str, size: int):
    """A colour emoji as an RGBA image about ``size`` pixels tall."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    font = _pil_font(color_emoji_font(), COLOR_STRIKE)
    canvas = Image.new("RGBA", (COLOR_STRIKE * 2, COLOR_STRIKE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((COLOR_STRIKE // 4, COLOR_STRIKE // 4), char, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        return None
    tile = canvas.crop(box)
    scale = size / max(tile.size)
    return tile.resize((max(1, round(tile.size[0] * scale)), max(1, round(tile.size[1] * scale))),
                       Image.LANCZOS)


def text_width(text: str, size: int) -> int:
    """Width in pixels of one line drawn by ``draw_text``."""
    width = 0
    for kind, piece in _runs(text):
        if kind == "emoji":
            tile = _emoji_tile(piece, size)
            width += (tile.size[0] + 1) if tile is not None else 0
        else:
            width += round(_pil_font(kind, size).getlength(piece))
    return width


def draw_text(image, xy, text: str, size: int = 12, fill="black") -> int:
    """Draw one line at ``xy`` (top left) into a PIL image; returns its width in pixels."""
    from PIL import ImageDraw  # noqa: PLC0415

    draw = ImageDraw.Draw(image)
    x, y = xy
    for kind, piece in _runs(text):
        if kind == "emoji":
            tile = _emoji_tile(piece, size)
            if tile is None:
                continue
            with contextlib.suppress(ValueError):
                image.paste(tile, (int(x), int(y + max(0, (size * 1.15 - tile.size[1]) / 2))), tile)
            x += tile.size[0] + 1
        else:
            font = _pil_font(kind, size)
            draw.text((x, y), piece, font=font, fill=fill)
            x += font.getlength(piece)
    return int(round(x - xy[0]))


def line_height(size: int) -> int:
    return int(round(size * 1.25))


def wrap(text: str, size: int, width: int, max_lines: int = 2) -> list[str]:
    """``text`` broken into lines at most ``width`` pixels wide (at spaces, else anywhere); the
    last line ends in "…" only when even ``max_lines`` lines cannot hold it."""
    words = str(text).replace("\n", " ").split(" ")
    lines: list[str] = []
    line = ""
    for word in words:
        candidate = f"{line} {word}" if line else word
        if text_width(candidate, size) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        while text_width(word, size) > width and len(word) > 1:  # a word longer than the line
            cut = len(word)
            while cut > 1 and text_width(word[:cut], size) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and text_width(last + "…", size) > width:
            last = last[:-1]
        lines = lines[:max_lines - 1] + [last.rstrip(" ,") + "…"]
    return lines or [""]


def draw_lines(image, xy, lines: list[str], size: int = 12, fill="black") -> int:
    """Draw lines one under another; returns the height used."""
    x, y = xy
    for i, line in enumerate(lines):
        draw_text(image, (x, y + i * line_height(size)), line, size, fill)
    return len(lines) * line_height(size)
