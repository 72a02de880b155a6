"""Tests of covidxray.data.charts: the age and country helpers, the PNGs, and the HTML page's counts."""

from __future__ import annotations

import base64
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from covidxray.data.charts import FIELDS, TOP_N, age_bin, country_of, make_charts
from covidxray.data.schema import MANIFEST_COLUMNS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEMS = [stem for stem, _, _ in FIELDS]
DATA = Path(os.environ.get("COVIDXRAY_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
COHEN = DATA / "covid-chestxray-dataset"


class _Tables(HTMLParser):
    """Collects each section's count table as {section id: {category: [cells...]}} plus its header."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[str]]] = {}
        self.headers: dict[str, list[str]] = {}
        self.images: dict[str, str] = {}
        self._section = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes.get("id") or ""
            self.tables[self._section] = {}
        elif tag == "img" and self._section:
            self.images[self._section] = attributes.get("src") or ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row:
            if self._section not in self.headers:
                self.headers[self._section] = self._row
            else:
                self.tables[self._section][self._row[0]] = self._row[1:]
            self._row = None


def _parse(page: Path) -> _Tables:
    parser = _Tables()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _total(parser: _Tables, section: str, category: str) -> int:
    """The 'total' column of one category's row in one section's table."""
    header = parser.headers[section]
    return int(parser.tables[section][category][header.index("total") - 1])


def _manifest(rows: list[dict[str, str]]) -> pd.DataFrame:
    """An all-string manifest as build_manifest returns it: every column, '' for missing."""
    return pd.DataFrame([{c: row.get(c, "") for c in MANIFEST_COLUMNS} for row in rows]).astype(str)


def _row(i: int, **fields: str) -> dict[str, str]:
    return {"path": f"/img/{i}.png", "source": "cohen", "modality": "X-ray", **fields}


@pytest.fixture(scope="module")
def hand_manifest() -> pd.DataFrame:
    """Eight images, two sources, with blanks, junk ages and a float age."""
    rows = [
        _row(0, finding="COVID-19", label="covid", age="65", sex="M", survival="Y", view="PA",
             location="Cho Ray Hospital, Ho Chi Minh City, Vietnam"),
        _row(1, finding="COVID-19", label="covid", age="65.0", sex="F", survival="N", view="AP",
             location="Milan, Italy"),
        _row(2, finding="COVID-19, ARDS", label="covid", age="?", sex="M", view="AP Supine",
             location="Italy"),
        _row(3, finding="Streptococcus", label="pneumonia", age="7", sex="F", view="PA",
             location="Sydney, Australia"),
        _row(4, finding="No Finding", label="normal", age="", view="L", location=""),
        _row(5, finding="todo", label="", exclusion="finding not yet labelled (todo)", age="42",
             modality="CT", view="Axial", location="Rome, Italy"),
        _row(6, source="darkcovidnet", finding="Covid-19", label="covid", view="frontal"),
        _row(7, source="darkcovidnet", finding="No_findings", label="normal", view="frontal"),
    ]
    return _manifest(rows)


@pytest.fixture(scope="module")
def hand_page(hand_manifest: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """make_charts run once on the hand-made manifest (charts take seconds), into a folder not yet there."""
    return make_charts(hand_manifest, tmp_path_factory.mktemp("charts") / "new" / "charts")


@pytest.mark.parametrize(
    ("age", "expected"),
    [("65", "60-69"), ("65.0", "60-69"), ("0", "0-9"), ("9.9", "0-9"), ("10", "10-19"), (" 42 ", "40-49"),
     ("100", "100-109"), ("", "unknown"), ("?", "unknown"), ("abc", "unknown"), ("-3", "unknown"),
     ("nan", "unknown"), ("inf", "unknown"), ("500", "unknown")],
)
def test_age_bin(age: str, expected: str) -> None:
    assert age_bin(age) == expected


@pytest.mark.parametrize(
    ("location", "expected"),
    [("Cho Ray Hospital, Ho Chi Minh City, Vietnam", "Vietnam"), ("Italy", "Italy"),
     ("Milan,Italy ", "Italy"), ("", "unknown"), ("   ", "unknown"), ("?", "unknown"),
     ("Somewhere, ", "unknown")],
)
def test_country_of(location: str, expected: str) -> None:
    assert country_of(location) == expected


def test_make_charts_writes_valid_pngs_and_returns_the_page(hand_page: Path) -> None:
    out = hand_page.parent
    assert out.name == "charts" and hand_page == out / "charts.html" and hand_page.is_file()
    for stem in STEMS:
        png = out / f"{stem}.png"
        assert png.is_file(), f"{stem}.png missing"
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, f"{stem}.png is not a real PNG"
    assert {"finding", "label", "age", "sex", "survival", "view", "modality", "country", "source"} <= set(STEMS)


def test_page_inlines_every_chart_and_is_self_contained(hand_page: Path) -> None:
    page = hand_page
    text = page.read_text(encoding="utf-8")
    parsed = _parse(page)
    assert set(parsed.images) == set(STEMS)
    for stem, src in parsed.images.items():
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), stem
        assert base64.b64decode(src[len(prefix):]) == (page.parent / f"{stem}.png").read_bytes()
    assert "covidxray is a research tool, not a medical device" in text
    assert "<title>" in text and "<h1>" in text
    assert re.search(r"\b8</strong> images", text), "the page must say how many images it covers"
    assert not re.search(r"""(src|href)=["'](?!data:)""", text), "page must not link to outside files"


def test_tables_show_the_right_counts(hand_page: Path) -> None:
    parsed = _parse(hand_page)
    assert _total(parsed, "label", "covid") == 4
    assert _total(parsed, "label", "excluded") == 1
    assert list(parsed.tables["label"]) == ["covid", "pneumonia", "normal", "excluded"]
    assert _total(parsed, "age", "60-69") == 2  # "65" and "65.0"
    assert _total(parsed, "age", "unknown") == 4  # "?", "" and the two darkcovidnet rows
    assert list(parsed.tables["age"]) == ["0-9", "40-49", "60-69", "unknown"]
    assert _total(parsed, "country", "Italy") == 3
    assert _total(parsed, "country", "Vietnam") == 1
    assert _total(parsed, "country", "unknown") == 3
    assert _total(parsed, "modality", "CT") == 1
    assert _total(parsed, "finding", "COVID-19") == 2  # "COVID-19, ARDS" is its own finding
    # two sources: one column per source besides the total
    assert parsed.headers["label"] == ["label", "cohen", "darkcovidnet", "total"]
    assert parsed.tables["label"]["covid"] == ["3", "1", "4"]
    for stem in STEMS:
        assert sum(int(cells[-1]) for cells in parsed.tables[stem].values()) == 8, stem


def test_long_category_lists_keep_top_20_and_group_the_rest(tmp_path: Path) -> None:
    rows = [_row(i, finding=f"finding {i:02d}", label="pneumonia") for i in range(25)]
    rows += [_row(100 + i, finding="finding 00", label="pneumonia") for i in range(5)]
    parsed = _parse(make_charts(_manifest(rows), tmp_path))
    findings = parsed.tables["finding"]
    assert len(findings) == TOP_N + 1 and list(findings)[-1] == "other"
    assert list(findings)[0] == "finding 00" and _total(parsed, "finding", "finding 00") == 6
    assert _total(parsed, "finding", "other") == 5


def test_empty_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no rows"):
        make_charts(pd.DataFrame(columns=MANIFEST_COLUMNS), tmp_path)


@pytest.mark.skipif(not (COHEN / "metadata.csv").is_file(),
                    reason=f"COVID-19 image data collection not found at {COHEN} (set COVIDXRAY_DATA)")
def test_real_metadata_counts_match_the_manifest(tmp_path: Path) -> None:
    from covidxray.data.manifest import build_manifest

    manifest = build_manifest([COHEN])
    page = make_charts(manifest, tmp_path)
    parsed = _parse(page)
    assert re.search(rf"\b{len(manifest)}</strong> images", page.read_text(encoding="utf-8"))
    assert _total(parsed, "finding", "COVID-19") == int((manifest["finding"] == "COVID-19").sum())
    assert _total(parsed, "label", "covid") == int((manifest["label"] == "covid").sum())
    assert _total(parsed, "modality", "CT") == int((manifest["modality"] == "CT").sum())
    assert _total(parsed, "source", "covid-chestxray-dataset") == len(manifest)
    for stem in STEMS:
        assert sum(int(cells[-1]) for cells in parsed.tables[stem].values()) == len(manifest), stem
        assert len(parsed.tables[stem]) <= TOP_N + 2  # top 20, "other", "unknown"


def test_unknown_is_drawn_apart_from_the_known_values(hand_manifest: pd.DataFrame) -> None:
    from covidxray.data.charts import count_table, split_unknown

    extract = dict((stem, fn) for stem, _, fn in FIELDS)
    age = count_table(hand_manifest, "age", extract["age"])
    known, unknown = split_unknown("age", age)
    assert unknown == 4 and "unknown" not in known.index and int(known["total"].sum()) == 4
    label = count_table(hand_manifest, "label", extract["label"])
    assert split_unknown("label", label) == (label, None)  # labels have no unknown to set apart
    for stem in ("age", "sex", "survival", "country"):
        assert split_unknown(stem, count_table(hand_manifest, stem, extract[stem]))[1] is not None, stem


def test_view_chart_says_when_no_view_was_recorded(hand_page: Path) -> None:
    views = _parse(hand_page).tables["view"]
    assert _total(_parse(hand_page), "view", "frontal (view not recorded)") == 2  # the darkcovidnet rows
    assert "frontal" not in views and _total(_parse(hand_page), "view", "PA") == 2
    titles = {stem: title for stem, title, _ in FIELDS}
    assert "Y = the patient survived" in titles["survival"]
