"""Evaluation results as report tables: ``metrics.json`` flattened, ``evaluation.md`` converted.

The harness's JSON layout may change, so the tables are built generically: a mapping whose
values are mappings of scalars becomes one table (rows = keys), a list of records becomes one
table, and scalars at one level become a key / value table. The Markdown converter handles the
subset the harness writes (headings, pipe tables, lists, code blocks, paragraphs); all text is
HTML-escaped first, so nothing in the files can inject markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Table", "format_value", "markdown_to_html", "metrics_tables"]

_MAX_TABLES = 40
_MAX_ROWS = 200


@dataclass
class Table:
    """A captioned table of formatted cells."""

    caption: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


def _is_scalar(v: Any) -> bool:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return True
    return (
        isinstance(v, Sequence)
        and not isinstance(v, str)
        and len(v) <= 3
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    )


def format_value(v: Any) -> str:
    """Short text for a table cell (floats to 3 significant digits, CIs as ``[lo, hi]``).

    Examples
    --------
    >>> format_value(0.123456), format_value([0.1, 0.25]), format_value(12345.6)
    ('0.123', '[0.1, 0.25]', '12,346')
    """
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, float):
        if v != v:
            return "n/a"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    if isinstance(v, Sequence) and not isinstance(v, str):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    return str(v)


def metrics_tables(obj: Any, caption: str = "Evaluation metrics") -> list[Table]:
    """Flatten a parsed ``metrics.json`` into captioned tables (see the module notes)."""
    out: list[Table] = []
    _walk(obj, caption, out)
    return out[:_MAX_TABLES]


def _records(rows: Sequence[Mapping[str, Any]], caption: str) -> Table:
    cols: list[str] = []
    for r in rows:
        cols += [str(k) for k in r if str(k) not in cols and _is_scalar(r[k])]
    body = [[format_value(r.get(c)) for c in cols] for r in rows[:_MAX_ROWS]]
    return Table(caption, cols, body)


def _walk(obj: Any, caption: str, out: list[Table]) -> None:
    if len(out) >= _MAX_TABLES:
        return
    if isinstance(obj, list):
        if obj and all(isinstance(r, Mapping) for r in obj):
            out.append(_records(obj, caption))
        elif obj:
            out.append(Table(caption, ["value"], [[format_value(v)] for v in obj[:_MAX_ROWS]]))
        return
    if not isinstance(obj, Mapping):
        out.append(Table(caption, ["value"], [[format_value(obj)]]))
        return
    scalars = {k: v for k, v in obj.items() if _is_scalar(v)}
    flat = {
        k: v
        for k, v in obj.items()
        if isinstance(v, Mapping) and v and all(_is_scalar(x) for x in v.values())
    }
    if scalars:
        out.append(
            Table(
                caption, ["name", "value"], [[str(k), format_value(v)] for k, v in scalars.items()]
            )
        )
    if len(flat) >= 2:
        out.append(_records([{"": k, **v} for k, v in flat.items()], caption))
    else:
        for k, v in flat.items():
            _walk(v, f"{caption}: {k}", out)
    for k, v in obj.items():
        if k in scalars or k in flat:
            continue
        _walk(v, f"{caption}: {k}", out)


_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])"), r"<em>\1</em>"),
]


def _inline(text: str) -> str:
    s = html.escape(text.strip(), quote=True)
    for pat, rep in _INLINE:
        s = pat.sub(rep, s)
    return s


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def markdown_to_html(text: str, *, heading_offset: int = 2) -> str:
    r"""Convert the Markdown subset of ``evaluation.md`` to escaped HTML.

    Parameters
    ----------
    text
        Markdown source.
    heading_offset
        Added to heading levels (``#`` becomes ``<h3>`` by default), capped at ``<h6>``.

    Examples
    --------
    >>> print(markdown_to_html("# Results\n\nP@5 is *0.41* <b>"))
    <h3>Results</h3>
    <p>P@5 is <em>0.41</em> &lt;b&gt;</p>
    """
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    heading = ""
    n_tables = 0
    i = 0

    def flush() -> None:
        if para:
            out.append("<p>" + " ".join(_inline(p) for p in para) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1 : j])) + "</pre>")
            i = j + 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if m:
            flush()
            level = min(len(m.group(1)) + heading_offset, 6)
            heading = m.group(2)
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif (
            stripped.startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\|?\s*:?-{2,}", lines[i + 1].strip())
        ):
            flush()
            head = _cells(stripped)
            i += 2
            body = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                body.append(_cells(lines[i]))
                i += 1
            th = "".join(f'<th scope="col">{_inline(c)}</th>' for c in head)
            trs = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body
            )
            n_tables += 1
            cap = _inline(heading) if heading else f"Table {n_tables}"
            out.append(
                f"<table><caption>{cap}</caption><thead><tr>{th}</tr></thead>"
                f"<tbody>{trs}</tbody></table>"
            )
            continue
        elif re.match(r"^[-*+]\s+", stripped):
            flush()
            items = []
            while i < len(lines) and re.match(r"^\s*[-*+]\s+", lines[i]):
                items.append("<li>" + _inline(re.sub(r"^\s*[-*+]\s+", "", lines[i])) + "</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif not stripped:
            flush()
        else:
            para.append(stripped)
        i += 1
    flush()
    return "\n".join(out)
