"""Charts of a manifest's metadata (findings, labels, age, sex, country, ...) as PNGs and one HTML page.

The page inlines every image, so it can be opened offline, mailed or moved without its folder.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen: charts are only ever written to files

import matplotlib.pyplot as plt  # noqa: E402  (must follow the backend choice)
import pandas as pd  # noqa: E402

from covidxray import RESEARCH_NOTICE  # noqa: E402

#: Categories shown per chart; rarer ones are summed into OTHER so that bars stay legible.
TOP_N = 20
UNKNOWN = "unknown"
OTHER = "other"
EXCLUDED = "excluded"
#: Values that sources write for "not known"; they are shown as UNKNOWN.
MISSING = {"", "?", "nan", "none", "unknown", "n/a"}
LABEL_ORDER = ["covid", "pneumonia", "normal", EXCLUDED]
HTML_NAME = "charts.html"


def _known(value: str) -> str:
    """The value stripped, or UNKNOWN when a source wrote blank or '?', so missing data is one bar."""
    value = (value or "").strip()
    return UNKNOWN if value.lower() in MISSING else value


def country_of(location: str) -> str:
    """Country from a location: its last comma-separated part ('..., Ho Chi Minh City, Vietnam' -> 'Vietnam')."""
    return _known((location or "").split(",")[-1])


def age_bin(age: str) -> str:
    """Ten-year bin ('60-69') of an age written as '65' or '65.0'; junk, blanks and impossible ages are UNKNOWN."""
    try:
        years = float((age or "").strip())
    except ValueError:
        return UNKNOWN
    if not math.isfinite(years) or years < 0 or years > 130:
        return UNKNOWN
    low = int(years // 10) * 10
    return f"{low}-{low + 9}"


def _label(label: str) -> str:
    """Label, or EXCLUDED for the rows the manifest left unlabelled (they are in the data, not in training)."""
    return label.strip() or EXCLUDED


def _column(name: str, convert: Callable[[str], str] = _known) -> Callable[[pd.DataFrame], pd.Series]:
    """A field extractor: one manifest column, each value mapped through convert."""
    return lambda manifest: manifest[name].map(convert)


#: What a reader that has no per-image view writes: the whole collection is frontal by its description.
COLLECTION_VIEW = "frontal"
VIEW_NOT_RECORDED = "frontal (view not recorded)"


def view_shown(view: str) -> str:
    """The view as charted: a collection-wide 'frontal' says so, since no one recorded it per image."""
    value = _known(view)
    return VIEW_NOT_RECORDED if value == COLLECTION_VIEW else value


#: (file stem, chart title, extractor). One PNG and one table per entry, in this order.
FIELDS: list[tuple[str, str, Callable[[pd.DataFrame], pd.Series]]] = [
    ("finding", "Finding (as the source wrote it)", _column("finding")),
    ("label", "Label", _column("label", _label)),
    ("age", "Age (10-year bins)", _column("age", age_bin)),
    ("sex", "Sex", _column("sex")),
    ("survival", "Survival (Y = the patient survived, N = the patient died)", _column("survival")),
    ("view", "View (PA, AP = frontal; L = lateral)", _column("view", view_shown)),
    ("modality", "Modality", _column("modality")),
    ("country", "Country of origin", _column("location", country_of)),
    ("source", "Source", _column("source")),
]


def _group_rare(values: pd.Series, top: int = TOP_N) -> pd.Series:
    """Keep the `top` commonest known values and call the rest OTHER; UNKNOWN is never hidden in OTHER."""
    known = values[values != UNKNOWN].value_counts()
    if len(known) <= top:
        return values
    keep = set(known.index[:top]) | {UNKNOWN}
    return values.where(values.isin(keep), OTHER)


def _order(stem: str, counts: pd.Series) -> list[str]:
    """Category order: natural for labels and ages, commonest first otherwise; OTHER and UNKNOWN last."""
    names = list(counts.index)
    tail = [n for n in (OTHER, UNKNOWN) if n in names]
    body = [n for n in names if n not in tail]
    if stem == "label":
        body = sorted(body, key=lambda n: (LABEL_ORDER.index(n) if n in LABEL_ORDER else len(LABEL_ORDER), n))
    elif stem == "age":
        body = sorted(body, key=lambda n: int(n.split("-")[0]))
    else:
        body = sorted(body, key=lambda n: (-counts[n], n))
    return body + tail


def count_table(manifest: pd.DataFrame, stem: str, extract: Callable[[pd.DataFrame], pd.Series]) -> pd.DataFrame:
    """Images per category (rows) and source (columns), plus a 'total' column, in display order.

    Args:
        manifest: the manifest charted.
        stem: the chart's name (age, sex, view, ...), which sets the display order.
        extract: manifest -> the category of each row.

    Returns:
        The count table, one row per category.
    """
    values = _group_rare(extract(manifest))
    table = pd.crosstab(values, manifest["source"].map(_known))
    table = table.loc[_order(stem, table.sum(axis=1))]
    table.index.name, table.columns.name = stem, None
    table["total"] = table.sum(axis=1)
    return table


#: Fields whose "unknown" bar is drawn apart, on its own scale, so that it cannot flatten the known values.
UNKNOWN_APART = {"age", "sex", "survival", "country"}


def _bars(ax, table: pd.DataFrame, sources: list[str], colours: dict[str, str]) -> None:
    """Stacked bars of table's rows (one colour per source) with each bar's total above it."""
    bottom = pd.Series(0, index=table.index)
    for source in sources:
        ax.bar(table.index, table[source], bottom=bottom, label=source, color=colours[source])
        bottom = bottom + table[source]
    for x, total in enumerate(table["total"]):
        ax.annotate(f"{total:,}", (x, total), ha="center", va="bottom", fontsize=8)
    ax.margins(y=0.12)


def split_unknown(stem: str, table: pd.DataFrame) -> tuple[pd.DataFrame, int | None]:
    """(rows drawn on the main scale, unknown count drawn apart or None) for one count table."""
    if stem in UNKNOWN_APART and UNKNOWN in table.index and len(table) > 1:
        return table.drop(index=UNKNOWN), int(table.loc[UNKNOWN, "total"])
    return table, None


def _plot(table: pd.DataFrame, title: str, path: Path, stem: str = "") -> None:
    """Bar chart of one count table, stacked by source when there is more than one.

    For UNKNOWN_APART fields the unknown count gets a narrow panel of its own to the right (own
    y-scale, its number in the title); the legend sits outside the axes, so it hides no bar, and the
    Source chart, whose bars are the sources, has none.
    """
    sources = [c for c in table.columns if c != "total"]
    colours = {source: f"C{number % 10}" for number, source in enumerate(sources)}
    known, unknown = split_unknown(stem, table)
    apart = unknown is not None
    width = max(6.0, 0.45 * len(table) + 2.5) + (1.2 if apart else 0.0)
    if apart:
        fig, (ax, side) = plt.subplots(1, 2, figsize=(width, 4.8), layout="constrained",
                                       gridspec_kw={"width_ratios": [max(len(known), 2), 1.1]})
    else:
        fig, ax = plt.subplots(figsize=(width, 4.8), layout="constrained")
    _bars(ax, known, sources, colours)
    long_labels = len(known) > 6 or max(len(str(n)) for n in known.index) > 8
    ax.tick_params(axis="x", labelrotation=45 if long_labels else 0)
    if long_labels:
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.set_ylabel("images")
    if apart:
        _bars(side, table.loc[[UNKNOWN]], sources, colours)
        side.set_title("not recorded\n(own scale)", fontsize=9)
        side.tick_params(axis="both", labelsize=8)
        side.set_xlim(-0.8, 0.8)
        title = f"{title}\n{int(known['total'].sum()):,} images with a value; {unknown:,} not recorded (right)"
    fig.suptitle(title, fontsize=11)
    if len(sources) > 1 and stem != "source":
        fig.legend(*ax.get_legend_handles_labels(), title="source", fontsize=8, loc="upper left",
                   bbox_to_anchor=(1.0, 0.9), frameon=False)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _html_table(table: pd.DataFrame) -> str:
    """A small escaped HTML table of the counts, one row per category."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [table.index.name, *table.columns])
    rows = "".join(
        f"<tr><td>{html.escape(str(name))}</td>" + "".join(f"<td>{int(v)}</td>" for v in row) + "</tr>"
        for name, row in table.iterrows()
    )
    return f'<table class="counts"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _section(title: str, png: Path, table: pd.DataFrame) -> str:
    """One chart section: heading, the PNG inlined as base64, then its count table."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (
        f'<section id="{png.stem}"><h2>{html.escape(title)}</h2>'
        f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        f"{_html_table(table)}</section>"
    )


def _page(sections: list[str], images: int, sources: int) -> str:
    """The whole self-contained page: title, research notice, image count, sections."""
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        ".notice{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em}"
        "img{max-width:100%}table.counts{border-collapse:collapse;font-size:.85em;margin:.5em 0 2em}"
        "table.counts td,table.counts th{border:1px solid #ccc;padding:.15em .6em;text-align:right}"
        "table.counts td:first-child{text-align:left}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>covidxray: dataset metadata</title><style>{style}</style></head><body>"
        "<h1>covidxray: dataset metadata</h1>"
        f'<p class="notice">{html.escape(RESEARCH_NOTICE)}</p>'
        f'<p class="summary">These charts cover <strong id="image-count">{images}</strong> images '
        f"from {sources} source{'s' if sources != 1 else ''}.</p>"
        + "".join(sections)
        + "</body></html>\n"
    )


def make_charts(manifest: pd.DataFrame, out_dir: Path) -> Path:
    """Write one PNG per field and a self-contained charts.html into out_dir; return the HTML's path."""
    if manifest.empty:
        raise ValueError("the manifest has no rows: nothing to chart")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = []
    for stem, title, extract in FIELDS:
        table = count_table(manifest, stem, extract)
        png = out_dir / f"{stem}.png"
        _plot(table, title, png, stem)
        sections.append(_section(title, png, table))
    page = out_dir / HTML_NAME
    page.write_text(_page(sections, len(manifest), manifest["source"].nunique()), encoding="utf-8")
    return page
