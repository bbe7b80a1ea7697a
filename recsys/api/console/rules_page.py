"""``/admin/merchandising``: the merchandising rules (create, edit, expire) and a user's list with and without
them (``/admin/rules`` is the JSON API of the same rules)."""

from __future__ import annotations

from recsys.api.console.layout import esc, page, table

ACTIONS = ("boost", "bury", "pin", "block", "promote")
HEADERS = ("Rule", "Name", "Action", "Products", "Categories", "Price", "Weight / slot / share", "Window",
           "Live", "Revision", "Changed", "")
FIELDS = ("name", "action", "products", "categories", "price_min", "price_max", "weight", "slot", "share",
          "starts_at", "ends_at")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _row(rule: dict) -> str:
    rid = int(rule["rule_id"])
    expired = rule.get("expired_at") is not None
    knob = {"boost": rule.get("weight"), "bury": rule.get("weight"), "pin": rule.get("slot"),
            "promote": rule.get("share")}.get(rule.get("action"), "")
    price = "" if rule.get("price_min") is None and rule.get("price_max") is None else \
        f"{_text(rule.get('price_min')) or '…'} – {_text(rule.get('price_max')) or '…'}"
    window = f"{_text(rule.get('starts_at')) or '…'} → {_text(rule.get('ends_at')) or '…'}"
    actions = ("expired " + esc(_text(rule["expired_at"])) if expired else
               f'<a id="edit-{rid}" href="/admin/merchandising?edit={rid}">Edit</a> '
               f'<form class="inline" method="post" action="/admin/merchandising/{rid}/expire">'
               f'<input id="expire-{rid}" type="submit" value="Expire"></form>')
    cells = (f"#{rid}", esc(rule.get("name")), esc(rule.get("action")), esc(_text(rule.get("products"))),
             esc(_text(rule.get("categories"))), esc(price), esc(_text(knob)), esc(window),
             f'<span id="live-{rid}">{"yes" if rule.get("live") else "no"}</span>', esc(rule.get("revision")),
             esc(f"{_text(rule.get('updated_at'))} by {_text(rule.get('updated_by'))}"),
             actions)
    return f'<tr id="rule-{rid}"{" class=expired" if expired else ""}>' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def rule_form(values: dict, rule_id: int | None = None) -> str:
    """The create form, or the edit form of ``rule_id`` filled with ``values`` (a rule or what was sent)."""
    v = {k: _text(values.get(k)) for k in FIELDS}
    action = f"/admin/merchandising/{int(rule_id)}" if rule_id is not None else "/admin/merchandising"
    legend = f"Edit rule #{int(rule_id)}" if rule_id is not None else "Create a rule"
    options = "".join(f'<option value="{a}"{" selected" if v["action"] == a else ""}>{a}</option>' for a in ACTIONS)

    def field(name: str, label: str, size: int = 8) -> str:
        return (f'<label>{esc(label)} <input id="rule-{name}" name="{name}" size="{size}" '
                f'value="{esc(v[name])}"></label>')

    return f"""<form id="rule-form" method="post" action="{action}"><fieldset><legend>{legend}</legend>
{field("name", "Name", 20)}<label>Action <select id="rule-action" name="action">{options}</select></label>
{field("products", "Product ids (comma separated)", 20)}{field("categories", "Categories (comma separated)", 20)}<br>
{field("price_min", "Price from")}{field("price_max", "to")}{field("weight", "Weight (boost/bury)")}
{field("slot", "Slot (pin, from 1)", 4)}{field("share", "Share (promote, 0..1)", 4)}<br>
{field("starts_at", "Starts (ISO time, optional)", 24)}{field("ends_at", "Ends (optional)", 24)}
<input id="rule-save" type="submit" value="{"Save" if rule_id is not None else "Create rule"}"></fieldset></form>"""


def _items(ident: str, items: list[dict]) -> str:
    rows = [f'<tr><td>{i + 1}</td><td class="product">{esc(item.get("product_id"))}</td>'
            f"<td>{esc(item.get('reason'))}</td></tr>" for i, item in enumerate(items)]
    return table(ident, ("#", "Product", "Reason"), rows, "no items")


def preview_html(preview: dict | None, user_id: str) -> str:
    form = ('<form id="preview-form" method="get" action="/admin/merchandising"><fieldset><legend>Preview a user&#x27;s '
            f'list</legend><label>User id <input id="preview-user" name="preview_user" size="10" value="{esc(user_id)}">'
            f'</label><input id="preview" type="submit" value="Preview"></fieldset></form>')
    if preview is None:
        return form
    return (form + '<div style="display:flex;gap:32px"><div><h3>With the rules</h3>'
            + _items("preview-with", preview["with_rules"]) + "</div><div><h3>Without rules</h3>"
            + _items("preview-without", preview["without_rules"]) + "</div></div>")


def render_rules(rules: list[dict], *, form_values: dict | None = None, edit_id: int | None = None,
                 preview: dict | None = None, preview_user: str = "", message: str = "", ok: bool = False) -> str:
    body = (rule_form(form_values or {}, edit_id)
            + table("rules", HEADERS, (_row(r) for r in rules), "No merchandising rule yet.")
            + preview_html(preview, preview_user))
    return page("Merchandising rules", body, message, ok)
