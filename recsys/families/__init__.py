"""The model families, registered once: ``REGISTERED`` lists them, ``family_of`` finds one by name or by the
``model_type`` the registry records. Each family is one package beside this file (``base`` is the protocol
they implement); nothing outside a family's package knows what it is.

To add a family: write its package (a ``FAMILY`` implementing ``base.ModelFamily``) and add its name to
``PACKAGES`` below (one line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from recsys.families.base import (
    Capabilities, FrameHistory, History, Model, ModelFamily, ModelUnavailableError, Scorer, ScoringWindow,
    ServedModel, TrainingData, UnknownFamilyError,
)
from recsys.families.hybrid.params import TrainParams

PACKAGES = (  # the registered families: one package beside this file each, one line each
    "hybrid",
    "lightfm_cf",
    "als",
    "item_knn",
    "sequential",
    "ease",
)
REGISTERED: tuple[ModelFamily, ...] = tuple(import_module(f"{__name__}.{name}").FAMILY for name in PACKAGES)
FAMILIES: dict[str, ModelFamily] = {f.name: f for f in REGISTERED}
DEFAULT_FAMILY = REGISTERED[0].name  # the production default (the first selection candidate)
_BY_TYPE = {f.model_type.lower(): f for f in REGISTERED} | {f.name.lower(): f for f in REGISTERED}


@dataclass(frozen=True)
class ConfigBase:
    """What families build their configurations from: the run's training parameters (seed, threads and
    the LightFM defaults), the re-ranking knobs a configuration is selected with, and per-family options
    over each family's defaults (``{family name: {option: value}}``)."""

    params: TrainParams = field(default_factory=TrainParams)
    rerank: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


def family_of(name_or_type: str) -> ModelFamily:
    """The family of a name or a registry ``model_type`` (any case)."""
    family = _BY_TYPE.get(str(name_or_type).lower())
    if family is None:
        raise UnknownFamilyError(f"unknown model family {name_or_type!r}; known: {sorted(FAMILIES)}")
    return family


def names() -> tuple[str, ...]:
    return tuple(FAMILIES)


def options_from_settings(settings) -> dict[str, dict]:
    """Each family's options that the settings give (e.g. a training time budget)."""
    return {f.name: opts for f in REGISTERED if (opts := f.options_from_settings(settings))}


def load_model(store, row) -> Model:
    """The model of a registry row (any family), its files verified against the row's checksums."""
    return family_of(row.model_type).load(store, row.model_id, row.artifacts)


def servable_users(family: ModelFamily, model: Model, users, column: str):
    """The rows of ``users`` the model can score: all of them with cold start, else the users it knows."""
    if family.capabilities.cold_start_users:
        return users
    return users[users[column].isin(model.known_user_ids)]


__all__ = ["Capabilities", "ConfigBase", "DEFAULT_FAMILY", "FAMILIES", "FrameHistory", "History", "Model",
           "ModelFamily", "ModelUnavailableError", "REGISTERED", "Scorer", "ScoringWindow", "ServedModel",
           "TrainParams", "TrainingData", "UnknownFamilyError", "family_of", "load_model", "names",
           "options_from_settings", "servable_users"]
