"""A tiny document model written out twice: self-contained HTML and Markdown with a figures folder.

The report is built once as a list of blocks (headings, paragraphs, tables, figures), so the
HTML file and its Markdown twin always say the same thing. In HTML every figure is a
``data:`` URI and all text is escaped; a Content-Security-Policy forbids the page from
fetching anything, so it renders the same offline and can never call out.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif,"Noto Color Emoji";
max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45;font-size:16px}
h1{font-size:1.7em;margin-bottom:.3em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.5em}.lead{color:#444}
.tablewrap{max-width:100%;overflow-x:auto;margin:.8em 0}
table{border-collapse:collapse;font-size:.9em;max-width:100%}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;vertical-align:top}td{overflow-wrap:anywhere}th{background:#f3f3f3}
td img{display:block}figure{margin:1em 0}figure img{display:block;height:auto}
figure.full img{width:100%}figure.natural img{max-width:100%}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:0 1.2em}
.pair figure img{width:100%}
.gallery{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}.gallery figure{margin:0;width:170px}
.gallery img{width:170px;height:auto;image-rendering:pixelated;border:1px solid #ccc}
figcaption,caption{font-size:.85em;color:#555;margin-top:.3em}
caption{caption-side:bottom;text-align:left}
.verdict{font-size:1.05em;padding:.6em .9em;background:#f6f8fa;border-left:5px solid #4a7;margin:1em 0}
.findings li{margin:.45em 0}.note{color:#555;font-size:.9em}
nav.toc{background:#f6f8fa;padding:.6em 1.2em;margin:1.5em 0}nav.toc ul{margin:.3em 0;padding-left:1.2em}
details{margin:.8em 0}summary{cursor:pointer;font-weight:600}
dl dt{font-weight:600;margin-top:.6em}dl dd{margin:.1em 0 0 1.2em}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:.8em;white-space:pre-wrap}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# Written into both files, so a later report may replace them and nothing else.
HTML_MARK = '<meta name="generator" content="clipxai report">'
MARKDOWN_MARK = "<!-- written by clipxai report -->"
MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


@dataclass
class Image:
    """A picture file (PNG/GIF) placed in a table cell or a figure."""

    path: Path
    alt: str
    width: int | None = None


def anchor(text: str) -> str:
    """An id for a heading: lower case letters, digits and hyphens."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return slug or "section"


class Document:
    """Blocks of a report, rendered by ``to_html`` and ``to_markdown``.

    Figures are ``full`` (the column's width), ``half`` (two to a row) or ``natural`` (their own
    pixel size, never wider than the column); ``details`` blocks fold away what most readers
    skip (configuration, environment).
    """

    def __init__(self, title: str):
        self.title = title
        self.blocks: list[tuple] = []
        self._ids: set[str] = set()

    def heading(self, level: int, text: str, anchor_id: str | None = None) -> str:
        """Add a heading; returns its anchor (unique in the document)."""
        base = anchor_id or anchor(text)
        ident, i = base, 1
        while ident in self._ids:
            i += 1
            ident = f"{base}-{i}"
        self._ids.add(ident)
        self.blocks.append(("h", level, text, ident))
        return ident

    def paragraph(self, text: str, css: str | None = None) -> None:
        """Plain text; ``**bold**`` spans are the only markup."""
        self.blocks.append(("p", text, css))

    def items(self, texts: list[str], css: str | None = None) -> None:
        """A bulleted list of paragraphs (``**bold**`` allowed)."""
        self.blocks.append(("ul", list(texts), css))

    def table(self, header: list[str], rows: list[list], caption: str = "") -> None:
        """A table; ``caption`` says what it shows and how to read it (every table has one)."""
        self.blocks.append(("table", header, rows, caption))

    def figure(self, path: Path, caption: str, size: str = "full") -> None:
        self.blocks.append(("figure", Image(Path(path), caption), caption, size))

    def gallery(self, pictures: list[tuple[Path, str]]) -> None:
        """Small pictures side by side, each with a caption."""
        self.blocks.append(("gallery", [(Image(Path(p), c), c) for p, c in pictures]))

    def contents(self, entries: list[tuple[str, str, int]]) -> None:
        """A table of contents: (anchor, text, level 1 or 2)."""
        self.blocks.append(("toc", list(entries)))

    def definitions(self, entries: list[tuple[str, str]]) -> None:
        self.blocks.append(("dl", list(entries)))

    def open_details(self, summary: str) -> None:
        """Start a folded section (closed until clicked); ``close_details`` ends it."""
        self.blocks.append(("details", summary))

    def close_details(self) -> None:
        self.blocks.append(("/details",))

    def preformatted(self, text: str) -> None:
        self.blocks.append(("pre", text))

    # -- HTML ---------------------------------------------------------------------------------
    @staticmethod
    def _inline_html(text: str) -> str:
        return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(str(text)))

    @staticmethod
    def _img_html(img: Image) -> str:
        data = base64.b64encode(img.path.read_bytes()).decode("ascii")
        mime = MIME.get(img.path.suffix.lower(), "application/octet-stream")
        width = f' width="{img.width}"' if img.width else ""
        return f'<img src="data:{mime};base64,{data}" alt="{html.escape(img.alt, quote=True)}"{width}>'

    def _cell_html(self, cell) -> str:
        return self._img_html(cell) if isinstance(cell, Image) else self._inline_html(cell)

    def _figure_html(self, block) -> str:
        _, img, caption, size = block
        return (f'<figure class="{size}">{self._img_html(img)}'
                f"<figcaption>{self._inline_html(caption)}</figcaption></figure>")

    def to_html(self) -> str:
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', HTML_MARK,
               '<meta name="viewport" content="width=device-width, initial-scale=1">',
               f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>",
               f"<h1>{html.escape(self.title)}</h1>"]
        pair: list[str] = []
        for block in self.blocks + [("end",)]:
            kind = block[0]
            if kind == "figure" and block[3] == "half":
                pair.append(self._figure_html(block))
                continue
            if pair:
                out.append('<div class="pair">' + "".join(pair) + "</div>")
                pair = []
            if kind == "h":
                out.append(f'<h{block[1]} id="{block[3]}">{html.escape(block[2])}</h{block[1]}>')
            elif kind == "p":
                cls = f' class="{block[2]}"' if block[2] else ""
                out.append(f"<p{cls}>{self._inline_html(block[1])}</p>")
            elif kind == "ul":
                cls = f' class="{block[2]}"' if block[2] else ""
                out.append(f"<ul{cls}>" + "".join(f"<li>{self._inline_html(t)}</li>" for t in block[1]) + "</ul>")
            elif kind == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
                body = "".join("<tr>" + "".join(f"<td>{self._cell_html(c)}</td>" for c in row) + "</tr>"
                               for row in block[2])
                cap = f"<caption>{self._inline_html(block[3])}</caption>" if block[3] else ""
                out.append(f'<div class="tablewrap"><table>{cap}<thead><tr>{head}</tr></thead>'
                           f"<tbody>{body}</tbody></table></div>")
            elif kind == "figure":
                out.append(self._figure_html(block))
            elif kind == "gallery":
                out.append('<div class="gallery">' + "".join(
                    f"<figure>{self._img_html(img)}<figcaption>{self._inline_html(c)}</figcaption></figure>"
                    for img, c in block[1]) + "</div>")
            elif kind == "toc":
                items, level = [], 1
                for ident, text, lvl in block[1]:
                    if lvl > level:
                        items.append("<ul>")
                    elif lvl < level:
                        items.append("</ul>")
                    level = lvl
                    items.append(f'<li><a href="#{ident}">{html.escape(text)}</a></li>')
                items += ["</ul>"] * (level - 1)
                out.append('<nav class="toc"><strong>Contents</strong><ul>' + "".join(items) + "</ul></nav>")
            elif kind == "dl":
                out.append("<dl>" + "".join(f"<dt>{html.escape(t)}</dt><dd>{self._inline_html(d)}</dd>"
                                            for t, d in block[1]) + "</dl>")
            elif kind == "details":
                out.append(f"<details><summary>{html.escape(block[1])}</summary>")
            elif kind == "/details":
                out.append("</details>")
            elif kind == "pre":
                out.append(f"<pre>{html.escape(block[1])}</pre>")
        out.append("</body></html>")
        return "\n".join(out)

    # -- Markdown -------------------------------------------------------------------------------
    @staticmethod
    def _md_escape(text: str) -> str:
        text = html.escape(str(text), quote=False)
        return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)

    def _inline_md(self, text: str) -> str:
        parts = re.split(r"\*\*(.+?)\*\*", str(text))
        return "".join(f"**{self._md_escape(p)}**" if i % 2 else self._md_escape(p) for i, p in enumerate(parts))

    def _img_md(self, img: Image, base: Path, staged: Path | None = None) -> str:
        path = Path(img.path).resolve()
        root = staged.resolve() if staged is not None and path.is_relative_to(staged.resolve()) else base.resolve()
        return f"![{self._md_escape(img.alt)}]({path.relative_to(root).as_posix()})"

    def to_markdown(self, base: Path, staged: Path | None = None) -> str:
        """Markdown whose image links are relative to ``base`` (the folder of the .md file).

        ``staged``: a folder whose files will be moved into ``base`` (clipxai.util.files.staged_files);
        a picture inside it is linked where it will be.
        """
        def picture(img: Image) -> str:
            return self._img_md(img, base, staged)

        out = [MARKDOWN_MARK, f"# {self._md_escape(self.title)}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out += [f'<a id="{block[3]}"></a>', "", "#" * block[1] + " " + self._md_escape(block[2]), ""]
            elif kind == "p":
                text = self._inline_md(block[1])
                out += [("> " + text) if block[2] == "verdict" else text, ""]
            elif kind == "ul":
                out += [f"- {self._inline_md(t)}" for t in block[1]] + [""]
            elif kind == "table":
                out.append("| " + " | ".join(self._md_escape(h) for h in block[1]) + " |")
                out.append("|" + "---|" * len(block[1]))
                for row in block[2]:
                    cells = [picture(c) if isinstance(c, Image) else self._inline_md(c) for c in row]
                    out.append("| " + " | ".join(c.replace("\n", " ") for c in cells) + " |")
                out += ["", f"*{self._inline_md(block[3])}*", ""] if block[3] else [""]
            elif kind == "figure":
                out += [picture(block[1]), "", f"*{self._inline_md(block[2])}*", ""]
            elif kind == "gallery":
                out += [" ".join(picture(img) for img, _ in block[1]), "",
                        "*" + "; ".join(self._inline_md(c) for _, c in block[1]) + "*", ""]
            elif kind == "toc":
                out += ["**Contents**", ""] + [f"{'  ' * (lvl - 1)}- [{self._md_escape(t)}](#{i})"
                                               for i, t, lvl in block[1]] + [""]
            elif kind == "dl":
                out += [f"- **{self._md_escape(t)}**: {self._inline_md(d)}" for t, d in block[1]] + [""]
            elif kind == "details":
                out += [f"**{self._md_escape(block[1])}**", ""]
            elif kind == "pre":
                fence = "````" if "```" in block[1] else "```"
                out += [fence, block[1], fence, ""]
        return "\n".join(out)
