"""The experiment record: two registry rows side by side (``python -m recsys models compare A B``).

Every training run is a ``recommendation_models`` row: its params (``TrainParams`` plus the
training window and time), the pairs it trained on, and the validation metrics evaluate stored
(``metrics["new"]`` beside the LIVE model and popularity of that night, and the protocol). This
module turns two such rows (``registry.model_to_dict``) into rows ``(field, a, b, b - a)``.
"""

from __future__ import annotations

from typing import Any

HEADER_FIELDS = ("model_type", "status", "version", "train_date", "created_at", "decision")
HIDDEN_PARAMS = ("train_days",)  # shown as the training window


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _diff(a: Any, b: Any) -> Any:
    return round(b - a, 6) if _number(a) and _number(b) else None


def _window(row: dict) -> str | None:
    days = (row.get("params") or {}).get("train_days")
    return f"{days[0]} .. {days[1]}" if isinstance(days, list) and len(days) == 2 else None


def _own_metrics(row: dict) -> dict:
    """The model's own validation metrics: ``metrics["new"]`` when evaluate nested them."""
    metrics = row.get("metrics") or {}
    own = metrics.get("new") if isinstance(metrics.get("new"), dict) else metrics
    return {k: v for k, v in own.items() if not isinstance(v, (dict, list))}


def compare_rows(a: dict, b: dict) -> list[tuple[str, Any, Any, Any]]:
    """``(field, value of a, value of b, b - a or None)`` for the header, params, samples and metrics."""
    rows: list[tuple[str, Any, Any, Any]] = [(f, a.get(f), b.get(f), None) for f in HEADER_FIELDS]
    rows.append(("training window", _window(a), _window(b), None))
    rows.append(("samples", a.get("training_samples_count"), b.get("training_samples_count"),
                 _diff(a.get("training_samples_count"), b.get("training_samples_count"))))
    pa, pb = a.get("params") or {}, b.get("params") or {}
    for name in sorted((pa.keys() | pb.keys()) - set(HIDDEN_PARAMS)):
        rows.append((f"params.{name}", pa.get(name), pb.get(name), _diff(pa.get(name), pb.get(name))))
    protocol_a = (a.get("metrics") or {}).get("protocol") or {}
    protocol_b = (b.get("metrics") or {}).get("protocol") or {}
    for name in ("day", "users", "positives"):
        rows.append((f"validation.{name}", protocol_a.get(name), protocol_b.get(name),
                     _diff(protocol_a.get(name), protocol_b.get(name))))
    ma, mb = _own_metrics(a), _own_metrics(b)
    for name in sorted(ma.keys() | mb.keys()):
        rows.append((f"metrics.{name}", ma.get(name), mb.get(name), _diff(ma.get(name), mb.get(name))))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "(none)"
    return str(value)


def format_table(rows: list[tuple[str, Any, Any, Any]], a_id: str, b_id: str) -> str:
    """A plain-text table: field, A, B, B - A (``-`` where a field is absent or not a number)."""
    cells = [("", f"A {a_id}", f"B {b_id}", "B - A")]
    cells += [(field, _cell(x), _cell(y), "" if d is None else f"{d:+.6g}") for field, x, y, d in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
