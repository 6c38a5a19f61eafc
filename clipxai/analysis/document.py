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
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.7em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}figure{margin:1em 0}img{max-width:100%}
figcaption{font-size:.85em;color:#555}.verdict{font-size:1.15em;padding:.6em .9em;background:#f6f8fa;
border-left:5px solid #4a7;margin:1em 0}pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:.8em}
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


class Document:
    """Blocks of a report, rendered by ``to_html`` and ``to_markdown``."""

    def __init__(self, title: str):
        self.title = title
        self.blocks: list[tuple] = []

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def paragraph(self, text: str, css: str | None = None) -> None:
        """Plain text; ``**bold**`` spans are the only markup."""
        self.blocks.append(("p", text, css))

    def table(self, header: list[str], rows: list[list]) -> None:
        self.blocks.append(("table", header, rows))

    def figure(self, path: Path, caption: str) -> None:
        self.blocks.append(("figure", Image(Path(path), caption), caption))

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

    def to_html(self) -> str:
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', HTML_MARK,
               '<meta name="viewport" content="width=device-width, initial-scale=1">',
               f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>",
               f"<h1>{html.escape(self.title)}</h1>"]
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
            elif kind == "p":
                cls = f' class="{block[2]}"' if block[2] else ""
                out.append(f"<p{cls}>{self._inline_html(block[1])}</p>")
            elif kind == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
                body = "".join("<tr>" + "".join(f"<td>{self._cell_html(c)}</td>" for c in row) + "</tr>"
                               for row in block[2])
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif kind == "figure":
                out.append(f"<figure>{self._img_html(block[1])}<figcaption>{self._inline_html(block[2])}"
                           f"</figcaption></figure>")
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

    def _img_md(self, img: Image, base: Path) -> str:
        rel = Path(img.path).resolve().relative_to(base.resolve()).as_posix()
        return f"![{self._md_escape(img.alt)}]({rel})"

    def to_markdown(self, base: Path) -> str:
        """Markdown whose image links are relative to ``base`` (the folder of the .md file)."""
        out = [MARKDOWN_MARK, f"# {self._md_escape(self.title)}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out += ["#" * block[1] + " " + self._md_escape(block[2]), ""]
            elif kind == "p":
                text = self._inline_md(block[1])
                out += [("> " + text) if block[2] else text, ""]
            elif kind == "table":
                out.append("| " + " | ".join(self._md_escape(h) for h in block[1]) + " |")
                out.append("|" + "---|" * len(block[1]))
                for row in block[2]:
                    cells = [self._img_md(c, base) if isinstance(c, Image) else self._inline_md(c) for c in row]
                    out.append("| " + " | ".join(c.replace("\n", " ") for c in cells) + " |")
                out.append("")
            elif kind == "figure":
                out += [self._img_md(block[1], base), "", f"*{self._inline_md(block[2])}*", ""]
            elif kind == "pre":
                fence = "````" if "```" in block[1] else "```"
                out += [fence, block[1], fence, ""]
        return "\n".join(out)
