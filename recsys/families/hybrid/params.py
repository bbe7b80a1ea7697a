"""``TrainParams``: what a LightFM model is trained with, and the run's training window, seed and threads
(cheap to import: no numpy or pandas)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from recsys.constants import ITEM_FEATURE_GROUPS, USER_FEATURE_GROUPS
from recsys.settings import default

# the attribute groups a model can be trained with (recsys.constants), by name -> the prefix of their features
USER_FEATURES = dict(zip(USER_FEATURE_GROUPS, ("country", "lang", "device", "segment")))
ITEM_FEATURES = dict(zip(ITEM_FEATURE_GROUPS, ("category", "price", "token")))


def check_feature_names(user: Iterable[str], item: Iterable[str]) -> None:
    """Raise a readable ``ValueError`` for an attribute group that does not exist."""
    bad = sorted(set(user) - set(USER_FEATURES)) + sorted(set(item) - set(ITEM_FEATURES))
    if bad:
        raise ValueError(f"unknown feature(s) {bad}; user: {list(USER_FEATURES)}, item: {list(ITEM_FEATURES)}")


LOSSES = ("warp", "bpr", "logistic", "warp-kos")


@dataclass(frozen=True)
class TrainParams:
    """What a model is trained with. The defaults are the settings' defaults: the configuration tuned
    by ``python -m recsys evaluate --tune`` on UCI Online Retail (bench/results/online_retail.md)."""

    window_days: int = default("training_window_days")
    epochs: int = default("epochs")
    loss: str = default("loss")
    no_components: int = default("no_components")
    learning_rate: float = default("learning_rate")
    item_alpha: float = default("item_alpha")
    user_alpha: float = default("user_alpha")
    threads: int = default("train_threads")  # 0 = all cores
    seed: int = default("seed")
    user_features: tuple[str, ...] = default("user_features")  # groups of recsys.families.hybrid.features.USER_FEATURES
    item_features: tuple[str, ...] = default("item_features")  # ... and of ITEM_FEATURES

    def __post_init__(self):
        object.__setattr__(self, "user_features", tuple(self.user_features))
        object.__setattr__(self, "item_features", tuple(self.item_features))
        check_feature_names(self.user_features, self.item_features)
        checks = {
            "window_days >= 2": self.window_days >= 2,
            "epochs >= 1": self.epochs >= 1,
            f"loss in {LOSSES}": self.loss in LOSSES,
            "no_components >= 1": self.no_components >= 1,
            "learning_rate > 0": self.learning_rate > 0,
            "item_alpha >= 0 and user_alpha >= 0": self.item_alpha >= 0 and self.user_alpha >= 0,
            "threads >= 0": self.threads >= 0,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid TrainParams {asdict(self)}: need {', '.join(failed)}")

    @classmethod
    def from_settings(cls, settings, **overrides) -> TrainParams:
        """Defaults from the settings object; keyword overrides win (``None`` means "keep")."""
        values = dict(
            window_days=settings.training_window_days, epochs=settings.epochs, loss=settings.loss,
            no_components=settings.no_components, learning_rate=settings.learning_rate,
            item_alpha=settings.item_alpha, user_alpha=settings.user_alpha,
            threads=settings.train_threads, seed=settings.seed,
            user_features=tuple(settings.user_features), item_features=tuple(settings.item_features),
        )
        unknown = set(overrides) - set(values)
        if unknown:
            raise ValueError(f"unknown TrainParams field(s): {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def num_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def train_days(self, day: dt.date) -> tuple[dt.date, dt.date]:
        """First and last (inclusive) day of the training window for hold-out ``day``."""
        return day - dt.timedelta(days=self.window_days - 1), day - dt.timedelta(days=1)


