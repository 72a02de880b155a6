"""The served HTML pages other than the upload page: the model card (Markdown rendered to HTML) and
the API reference (rendered from the app's OpenAPI schema, so /docs works with no internet)."""

from __future__ import annotations

import html
import json
import re

#: The page frame: the notice on top, the page's own stylesheet and icon, no external asset.
FRAME = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" href="/favicon.ico">
  <link rel="stylesheet" href="/static/style.css">
</head>
<body class="document">
  <header>
    <h1><a href="/">covidxray</a> <span class="version">{version}</span></h1>
    <p id="notice" class="notice" role="note">{notice}</p>
  </header>
  <main class="prose">
{body}
  </main>
  <footer><p class="small"><a href="/">Screen an X-ray</a> &middot; <a href="/docs">API</a> &middot; <a href="/model-card">model card</a></p></footer>
</body>
</html>
"""


def page(title: str, body: str, notice: str, version: str) -> str:
    return FRAME.format(title=html.escape(title), body=body, notice=html.escape(notice), version=html.escape(version))


# ---- a small, safe Markdown renderer: every character of the source is escaped; no raw HTML passes ----

_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BULLET = re.compile(r"^[-*]\s+")
_SAFE_LINK = re.compile(r"^(?:/|#|\.{0,2}/|[\w.\-]+(?:/|$|\.))")  # local links only: no scheme, no javascript:


def _inline(text: str) -> str:
    """Escaped text with `code`, **bold**, *emphasis* and local [links](...) as HTML."""
    pieces = []
    for number, piece in enumerate(_INLINE_CODE.split(text)):
        if number % 2:
            pieces.append(f"<code>{html.escape(piece)}</code>")
            continue
        escaped = html.escape(piece, quote=False)
        escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
        escaped = _EMPHASIS.sub(r"<em>\1</em>", escaped)

        def link(match: re.Match) -> str:
            target = html.unescape(match.group(2))
            if _SAFE_LINK.match(target) and ":" not in target:
                return f'<a href="{html.escape(target)}">{match.group(1)}</a>'
            return match.group(1)
        pieces.append(_LINK.sub(link, escaped))
    return "".join(pieces)


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def markdown_html(text: str) -> str:
    """HTML of the Markdown that covidxray writes (model cards, reports): headings, paragraphs,
    '-' lists, '>' quotes, pipe tables, fenced code, inline code, bold, emphasis, local links."""
    lines = text.splitlines()
    out: list[str] = []
    paragraph: list[str] = []
    index = 0

    def flush() -> None:
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            language = stripped[3:].strip()
            block = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith("```"):
                block.append(lines[index])
                index += 1
            css = f' class="language-{html.escape(language)}"' if re.fullmatch(r"[\w+-]+", language or "-") and language else ""
            out.append(f"<pre><code{css}>{html.escape(chr(10).join(block))}</code></pre>")
            index += 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped.startswith(">"):
            flush()
            quote = []
            while index < len(lines) and lines[index].strip().startswith(">"):
                quote.append(lines[index].strip()[1:].strip())
                index += 1
            out.append(f"<blockquote><p>{_inline(' '.join(quote))}</p></blockquote>")
            continue
        elif re.match(r"^[-*]\s+", stripped):
            flush()
            items = []
            while index < len(lines) and re.match(r"^[-*]\s+", lines[index].strip()):
                item = _inline(_BULLET.sub("", lines[index].strip()))
                items.append(f"<li>{item}</li>")
                index += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif stripped.startswith("|") and index + 1 < len(lines) and re.fullmatch(r"\|?[\s:|-]+\|?", lines[index + 1].strip()) \
                and "-" in lines[index + 1]:
            flush()
            header = "".join(f"<th>{_inline(cell)}</th>" for cell in _cells(stripped))
            rows = []
            index += 2
            while index < len(lines) and lines[index].strip().startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{_inline(cell)}</td>" for cell in _cells(lines[index])) + "</tr>")
                index += 1
            out.append(f'<div class="table"><table><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
            continue
        elif not stripped:
            flush()
        else:
            paragraph.append(stripped)
        index += 1
    flush()
    return "\n".join(out)


# ---- the API reference, from the OpenAPI schema ----

def _schema_type(schema: dict) -> str:
    """A short type name for an OpenAPI schema: 'number or null', 'list of string', 'ModelIdentity'."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{html.escape(name)}">{html.escape(name)}</a>'
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_schema_type(option) for option in schema[key])
    kind = schema.get("type", "object")
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_schema_type(schema['additionalProperties'])}"
    if "enum" in schema:
        return " | ".join(html.escape(json.dumps(value)) for value in schema["enum"])
    text = html.escape(str(kind))
    return text + (f" ({html.escape(schema['format'])})" if schema.get("format") else "")


def _schema_table(schema: dict) -> str:
    properties = schema.get("properties") or {}
    if not properties:
        return f"<p>{_schema_type(schema)}</p>"
    required = set(schema.get("required") or ())
    rows = "".join(f"<tr><td><code>{html.escape(name)}</code>{'' if name in required else ' <span class=small>(optional)</span>'}</td>"
                   f"<td>{_schema_type(field)}</td><td>{html.escape(field.get('description', ''))}</td></tr>"
                   for name, field in properties.items())
    return f'<div class="table"><table><thead><tr><th>field</th><th>type</th><th>meaning</th></tr></thead><tbody>{rows}</tbody></table></div>'


def api_html(schema: dict) -> str:
    """The body of /docs: each operation with its parameters, body and responses, then the schemas."""
    info = schema.get("info", {})
    parts = [f"<h1>{html.escape(info.get('title', 'API'))} API {html.escape(info.get('version', ''))}</h1>",
             f"<p>{html.escape(info.get('description', ''))}</p>",
             '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI '
             f"{html.escape(schema.get('openapi', ''))}), for client generators. This page is rendered by the server "
             "from it and needs no internet.</p>"]
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            anchor = re.sub(r"[^\w]+", "-", f"{method}{path}").strip("-")
            parts.append(f'<section class="operation" id="{html.escape(anchor)}"><h2><span class="method">{html.escape(method.upper())}</span> '
                         f"<code>{html.escape(path)}</code></h2><p>{html.escape(operation.get('summary', ''))}</p>")
            if operation.get("description"):
                parts.append(f"<p class=small>{html.escape(operation['description'])}</p>")
            parameters = operation.get("parameters") or []
            if parameters:
                rows = "".join(f"<tr><td><code>{html.escape(p['name'])}</code> <span class=small>({html.escape(p.get('in', ''))})</span></td>"
                               f"<td>{_schema_type(p.get('schema', {}))}</td>"
                               f"<td>{html.escape(json.dumps(p.get('schema', {}).get('default')) if 'default' in p.get('schema', {}) else '')}</td>"
                               f"<td>{html.escape(p.get('description', ''))}</td></tr>" for p in parameters)
                parts.append("<h3>Parameters</h3><div class=table><table><thead><tr><th>name</th><th>type</th><th>default</th>"
                             f"<th>meaning</th></tr></thead><tbody>{rows}</tbody></table></div>")
            body = (operation.get("requestBody") or {}).get("content") or {}
            for media, content in body.items():
                parts.append(f"<h3>Request body <code>{html.escape(media)}</code></h3>{_schema_table(content.get('schema', {}))}")
            rows = []
            for status, response in (operation.get("responses") or {}).items():
                content = response.get("content") or {}
                shape = ", ".join(_schema_type(c.get("schema", {})) for c in content.values()) or "&ndash;"
                rows.append(f"<tr><td>{html.escape(status)}</td><td>{html.escape(response.get('description', ''))}</td><td>{shape}</td></tr>")
            parts.append("<h3>Responses</h3><div class=table><table><thead><tr><th>status</th><th>when</th><th>body</th></tr></thead>"
                         f"<tbody>{''.join(rows)}</tbody></table></div></section>")
    schemas = (schema.get("components") or {}).get("schemas") or {}
    if schemas:
        parts.append("<h2>Schemas</h2>")
        for name, definition in schemas.items():
            parts.append(f'<section class="schema" id="schema-{html.escape(name)}"><h3><code>{html.escape(name)}</code></h3>'
                         f"<p>{html.escape(definition.get('description', ''))}</p>{_schema_table(definition)}</section>")
    return "\n".join(parts)
