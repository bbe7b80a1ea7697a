"""What counts as already seen: products a user had one of these events on are never recommended to
them again (precompute, the API's tiers and on-the-fly scoring) and are neither candidates nor truth
in every evaluation (the nightly hold-out day, ``python -m recsys evaluate``).

``RECSYS_EXCLUDE_SEEN`` is ``purchased`` (the default), ``interacted`` (every event type but
IMPRESSION: shops whose products are consumed once) or a comma-separated list of event types.
"""

from __future__ import annotations

from recsys.constants import EVENT_TYPES, SEEN_PRESETS


def seen_event_types(spec: str) -> tuple[str, ...]:
    """The event types ``spec`` names, in ``EVENT_TYPES`` order; ``ValueError`` for anything else."""
    text = spec.strip() if isinstance(spec, str) else ""
    if text.lower() in SEEN_PRESETS:
        return SEEN_PRESETS[text.lower()]
    names = {part.strip().upper() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(EVENT_TYPES))
    if not names or unknown:
        raise ValueError(f"exclude_seen must be {' or '.join(SEEN_PRESETS)} or a comma-separated list of "
                         f"event types of {', '.join(EVENT_TYPES)}; got {spec!r}")
    return tuple(t for t in EVENT_TYPES if t in names)
