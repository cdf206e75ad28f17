"""The API's documentation page (``/api/docs``): the OpenAPI description as one plain HTML page,
with copy-paste commands; no script, nothing fetched elsewhere."""

from __future__ import annotations

import html
from typing import Any

_DOCS_STYLE = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
               "padding:0 1rem;color:#1f2937;line-height:1.5}code,pre{font-family:ui-monospace,"
               "monospace}pre{background:#f4f4f5;padding:.8rem;overflow-x:auto;border-radius:6px}"
               "table{border-collapse:collapse}td,th{border:1px solid #d4d4d8;padding:.3rem .6rem;"
               "text-align:left;vertical-align:top}h2{margin-top:2rem}")


def examples(base: str) -> list[tuple[str, str]]:
    """Copy-paste commands for ``base`` (the server's URL), as the docs page shows them."""
    ask = '{"question": "Qui dirige Ampere ?"}'
    chat = '{"model": "ampere-qa", "messages": [{"role": "user", "content": "Who leads Ampere?"}]}'
    return [
        ("One question, one JSON answer",
         f"curl -s {base}/api/ask -H 'Content-Type: application/json' -d '{ask}'"),
        ("A follow-up, with the earlier questions",
         f"curl -s {base}/api/ask -H 'Content-Type: application/json' "
         """-d '{"question": "Et où ?", "history": ["Combien de salariés compte Ampere ?"]}'"""),
        ("OpenAI protocol (any OpenAI client: base URL " + f"{base}/v1)",
         f"curl -s {base}/v1/chat/completions -H 'Content-Type: application/json' -d '{chat}'"),
        ("Gradio's protocol, in two requests (what gradio_client uses)",
         f"EVENT_ID=$(curl -s {base}/gradio_api/call/ask -H 'Content-Type: application/json' "
         """-d '{"data": ["Qui dirige Ampere ?"]}' | cut -d'"' -f4)\n"""
         f"curl -s {base}/gradio_api/call/ask/$EVENT_ID"),
    ]


def docs_html(schema: dict[str, Any], base: str) -> str:
    """The API's documentation as one HTML page: no script, nothing fetched elsewhere."""
    esc = html.escape
    info = schema["info"]
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{esc(info['title'])} API</title><style>{_DOCS_STYLE}</style></head><body>"
             f"<h1>{esc(info['title'])} API {esc(info['version'])}</h1>"
             f"<p>{esc(info.get('description', ''))} The machine-readable description is "
             f"<a href='/api/openapi.json'>/api/openapi.json</a> (OpenAPI 3).</p>"]
    for title, command in examples(base):
        parts.append(f"<h2>{esc(title)}</h2><pre><code>{esc(command)}</code></pre>")
    parts.append("<h2>Endpoints</h2>")
    components = schema.get("components", {}).get("schemas", {})
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            parts.append(f"<h3><code>{esc(method.upper())} {esc(path)}</code></h3>"
                         f"<p>{esc(op.get('summary', ''))}</p>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            fields = components.get(ref, {}).get("properties", {})
            if fields:
                rows = "".join(
                    f"<tr><td><code>{esc(name)}</code></td>"
                    f"<td>{esc(str(prop.get('default', '')))}</td>"
                    f"<td>{esc(prop.get('description', ''))}</td></tr>"
                    for name, prop in fields.items())
                parts.append(f"<table><tr><th>field</th><th>default</th><th>meaning</th></tr>"
                             f"{rows}</table>")
    parts.append("</body></html>")
    return "".join(parts)
