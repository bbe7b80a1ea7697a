"""The model family plug-in: what every family implements, and all that the rest of recsys may ask of it.

A family is one package under ``recsys/families/`` that builds one ``ModelFamily`` and is listed once in
``recsys.families.REGISTERED``. Code outside a family's package reaches a model only through these
protocols: it never names a family, checks a model's type or reads its files.

The life of a model, and who asks what:

- selection, tuning, ``evaluate`` and the nightly train step: ``family.fit(data, config, seed=, threads=)``
  returns a ``Model``; the nightly step saves it (``model.save(store, model_id)`` returns the files'
  SHA-256, recorded on the registry row) and registers it with ``family.model_type``;
- evaluation, precompute, drift and publish: ``family.load(store, model_id, checksums)`` (every file checked
  against the registry's record before it is parsed), then ``model.scorer(products, history)``: a
  ``Scorer`` of blocks of users against those products (``history``: where a family that scores from each
  user's recent events reads them);
- publish: ``model.write_served(users, products, folder)`` writes the files the API maps (their names,
  in write order: the last one marks a complete set);
- the API: ``family.open_served(model_id, folder)`` over the node's verified copy of those files: a
  ``ServedModel`` that scores one user on the fly and gives similar items (and, for a family with
  ``real_time``, re-scores a user from the live session's sequence).

What a family can do is in its ``Capabilities``; code outside asks them instead of checking names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sqlalchemy import Engine

    from recsys.artifacts import ArtifactStore


class UnknownFamilyError(ValueError):
    """A model family (or registry ``model_type``) that this version cannot train or serve."""


class ModelUnavailableError(RuntimeError):
    """A model cannot run here (e.g. its optional package is not installed)."""


@dataclass(frozen=True)
class Capabilities:
    """What a family can do; code outside the family asks these, never its name.

    - ``cold_start_users``: it scores users unseen in training (from their attributes); when False, publish
      and precompute serve the users it was trained on only.
    - ``dense_vectors``: a score is ``user_vector @ item_vector`` (precompute writes the ``embedding:*``
      keys; similar items are the cosine of item vectors).
    - ``real_time``: the API re-scores a user's list from the live session's product sequence.
    - ``needs_torch``: training needs ``requirements-train.txt`` (PyTorch); serving never does.
    - ``max_items``: the largest catalogue it handles (its item-item matrix in memory); None: no limit.
    """

    cold_start_users: bool
    dense_vectors: bool = True
    real_time: bool = False
    needs_torch: bool = False
    max_items: int | None = None

    def fits(self, n_items: int) -> str | None:
        """Why a catalogue of ``n_items`` is too large for the family, or None."""
        if self.max_items is not None and n_items > self.max_items:
            return f"the catalogue has {n_items:,} products, more than the {self.max_items:,} it handles in memory"
        return None


@dataclass
class TrainingData:
    """What a family trains on: the window's aggregated interactions (``user_id, product_id, weight,
    purchases, spend``), every user and product with their attributes, and the window's signal events in
    time order (``user_id, product_id, event_type, timestamp``) for a family that reads sequences (read on
    demand: ``events_loader``)."""

    frame: pd.DataFrame
    users: pd.DataFrame
    products: pd.DataFrame
    events: pd.DataFrame | None = None
    events_loader: Callable[[], pd.DataFrame] | None = field(default=None, repr=False)

    def signal_events(self) -> pd.DataFrame:
        if self.events is None:
            if self.events_loader is None:
                raise ValueError("this training data has no events: pass events or an events_loader")
            self.events = self.events_loader()
        return self.events


class History(Protocol):
    """Where a scorer reads users' recent events: ``events(user_ids)`` -> ``user_id, product_id,
    event_type, timestamp`` in time order (the signal events of ``recsys.data.frames.SIGNAL_EVENTS``)."""

    def events(self, user_ids: Sequence[int]) -> pd.DataFrame: ...


@dataclass(frozen=True)
class ScoringWindow:
    """History from ``user_events``: ``[until_ms - lookback_days, until_ms)`` (evaluate: before the
    hold-out day; precompute: up to the end of the day)."""

    engine: Engine
    until_ms: int
    lookback_days: int

    def events(self, user_ids: Sequence[int]) -> pd.DataFrame:
        from recsys.constants import MS_PER_DAY
        from recsys.data.frames import load_signal_events

        return load_signal_events(self.engine, self.until_ms - self.lookback_days * MS_PER_DAY, self.until_ms,
                                  [int(u) for u in user_ids])


@dataclass(frozen=True)
class FrameHistory:
    """History from events in memory (offline evaluation: the split's training events)."""

    frame: pd.DataFrame

    def events(self, user_ids: Sequence[int]) -> pd.DataFrame:
        from recsys.constants import COL_USER

        return self.frame[self.frame[COL_USER].isin([int(u) for u in user_ids])]


@runtime_checkable
class Scorer(Protocol):
    """One model scoring blocks of users against ``products`` (their row order is the column order).

    ``block(users, segments)`` builds what the other methods read for those users (a family that reads
    recent events reads them here: ``list_fields`` and ``follows`` then describe the users of the last
    block). ``top`` is precompute's fused selection: each user's ``n`` best columns and their scores,
    best first, the ``(seen_rows[i], seen_cols[i])`` pairs excluded. ``scores`` is the dense block
    (evaluation). ``user_vectors`` / ``item_vectors`` are the dense vectors whose product is the score
    (``embedding:*`` keys), None for a family without them."""

    products: pd.DataFrame
    item_vectors: np.ndarray | None

    def block(self, users: pd.DataFrame, segments: pd.Series | None = None) -> Any: ...

    def scores(self, block: Any) -> np.ndarray: ...

    def top(self, block: Any, n: int, seen_rows: np.ndarray, seen_cols: np.ndarray, *, tile_bytes: int,
            threads: int) -> tuple[np.ndarray, np.ndarray]: ...

    def user_vectors(self, block: Any) -> np.ndarray | None: ...

    def list_fields(self, user_id: int) -> dict: ...

    def follows(self, user_id: int) -> int | None: ...


class Model(Protocol):
    """A trained model of a family (fitted, or loaded from the store)."""

    info: dict

    @property
    def known_user_ids(self) -> np.ndarray | None:
        """The users it can score when it has no cold start (None: any user)."""

    def save(self, store: ArtifactStore, model_id: str) -> dict[str, str]: ...

    def scorer(self, products: pd.DataFrame, history: History | None = None) -> Scorer: ...

    def write_served(self, users: pd.DataFrame, products: pd.DataFrame, folder: Path) -> tuple[str, ...]: ...


class ServedModel(Protocol):
    """A published model as one API node serves it, over its verified local files.

    ``user_vector(user_id)``: what ``score_user`` scores (None: a user it cannot score); ``score_user``:
    the ``k`` best ``(product_id, score)``, best first, ``exclude`` left out; ``similar_items``: the
    products closest to one product. A ``real_time`` family also has ``sequence_key(sequence)`` (the
    key a cached list records, so a list made for another sequence is re-scored) and
    ``score_sequence(sequence, k, exclude)`` (``sequence``: product ids, newest first)."""

    model_id: str

    @property
    def dim(self) -> int: ...

    def has_item(self, product_id: int) -> bool: ...

    def user_vector(self, user_id: int) -> np.ndarray | None: ...

    def score_user(self, vector: np.ndarray, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]: ...

    def similar_items(self, product_id: int, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]: ...


@runtime_checkable
class ModelFamily(Protocol):
    """One family: its names, what it can do, and how its models are trained, stored, loaded and served.

    ``name``: the name users give (``RECSYS_SELECTION_CANDIDATES``, the trigger form, ``evaluate``);
    ``model_type``: what the registry records for its models (the name, or an older spelling);
    ``configurations(base)``: its named configurations for model selection, ``{candidate name: config}``
    (``base``: the run's training parameters); ``default_config(base)``: the configuration of a run that
    pins the family; ``unavailable()``: why it cannot train here, or None; ``served_files``: the files
    publish writes for the API (empty when it serves files training wrote: ``own_files``);
    ``options_from_settings(settings)``: its options the settings give (a training time budget);
    ``ranks``: its candidates' order in selection; ``search_space(trial)``: the values an Optuna trial
    suggests, None without a search space; ``with_values(config, values)`` / ``values_of(config)``: a
    configuration with searched values set, and the searched values of one."""

    name: str
    model_type: str
    label: str
    capabilities: Capabilities
    served_files: tuple[str, ...]
    legacy_files: tuple[str, ...]  # what an earlier version published instead (read once trusted)
    ranks: Mapping[str, float]

    def unavailable(self) -> str | None: ...

    def options_from_settings(self, settings: Any) -> dict: ...

    def configurations(self, base: Any) -> dict[str, dict]: ...

    def default_config(self, base: Any) -> dict: ...

    def fit(self, data: TrainingData, config: Mapping, *, seed: int, threads: int) -> Model: ...

    def load(self, store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None) -> Model: ...

    def own_files(self, store: ArtifactStore, model_id: str) -> tuple[str, ...]: ...

    def saved(self, store: ArtifactStore, model_id: str) -> bool: ...

    def check_served(self, model_id: str, folder: Path) -> None: ...

    def open_served(self, model_id: str, folder: Path, products: pd.DataFrame | None = None) -> ServedModel: ...

    def search_space(self, trial: Any) -> dict | None: ...

    def with_values(self, config: Mapping, values: Mapping) -> dict: ...

    def values_of(self, config: Mapping) -> dict: ...
