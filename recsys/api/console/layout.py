"""The console's page shell: navigation, the logout button, a message line, tables."""

from __future__ import annotations

import html
from collections.abc import Iterable

STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
nav{display:flex;gap:18px;align-items:center;border-bottom:1px solid #ddd;padding-bottom:8px;margin-bottom:16px}
nav form{margin-left:auto}table{border-collapse:collapse;margin:10px 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f5f5f5}.num{text-align:right}.badge{padding:1px 6px;
border-radius:4px;background:#eee;font-weight:600}.error{color:#b00;font-weight:600}.ok{color:#070}
form.inline{display:inline}fieldset{border:1px solid #ddd;margin:12px 0;padding:8px 12px}label{margin-right:12px}
small{color:#666}"""
NAV = (("/admin", "Home"), ("/admin/ab-tests", "A/B tests"), ("/admin/models", "Models"),
       ("/admin/merchandising", "Merchandising"))


def esc(value) -> str:
    """Any value as escaped text (``None`` as an empty string)."""
    return "" if value is None else html.escape(str(value))


def table(ident: str, headers: Iterable[str], rows: Iterable[str], empty: str) -> str:
    """A table of pre-rendered ``<tr>`` rows (their cells escaped by the caller), or ``empty`` as a line."""
    rows, attr = list(rows), f' id="{esc(ident)}"' if ident else ""
    if not rows:
        return f'<p{attr} class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f"<table{attr}><tr>{head}</tr>\n" + "\n".join(rows) + "</table>"


def page(title: str, body: str, message: str = "", ok: bool = False) -> str:
    """One console page: ``body`` is already escaped HTML; ``message`` (text) is shown above it."""
    links = "".join(f'<a href="{href}">{esc(label)}</a>' for href, label in NAV)
    note = (f'<p id="message" class="{"ok" if ok else "error"}" role="{"status" if ok else "alert"}">'
            f"{esc(message)}</p>") if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)} - recsys admin</title>
<link rel="icon" href="data:,"><style>{STYLE}</style></head><body>
<nav><b>recsys admin</b>{links}
<form method="post" action="/admin/logout"><input id="logout" type="submit" value="Log out"></form></nav>
<h1>{esc(title)}</h1>{note}
{body}
</body></html>"""


def home() -> str:
    items = "".join(f'<li><a href="{href}">{esc(label)}</a></li>' for href, label in NAV[1:])
    return page("Console", f"<ul id=\"sections\">{items}</ul>"
                "<p><small>Scripts use the JSON endpoints with <code>Authorization: Bearer "
                "&lt;RECSYS_ADMIN_TOKEN&gt;</code> (<a href=\"/docs\">/docs</a>).</small></p>")
