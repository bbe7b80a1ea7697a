"""Plain LightFM collaborative filtering: WARP on ids only (no user or product attributes), the hybrid's
model class without features (``recsys.families.hybrid``). Its configuration is
``{"params": {TrainParams fields}, "features": "ids only"}``, by default ``PLAIN_LIGHTFM`` (the pipeline's
parameters before tuning): tuning the hybrid does not change this family. Cold start: a user unseen in
training has no identity feature and no attributes, so it gets the zero vector (popularity decides)."""

from __future__ import annotations

import dataclasses

from recsys.families.hybrid import FEATURE_FIELDS, LightFMFamily, params_of
from recsys.families.hybrid.params import TrainParams

PLAIN_LIGHTFM = {"loss": "warp", "no_components": 64, "learning_rate": 0.05, "epochs": 30, "item_alpha": 1e-6,
                 "user_alpha": 1e-6, "user_features": (), "item_features": ()}


def plain_lightfm(seed: int = 42, threads: int = 0) -> TrainParams:
    """This family's default parameters."""
    return TrainParams(**PLAIN_LIGHTFM, seed=seed, threads=threads)


def cf_config(params: TrainParams) -> dict:
    params = dataclasses.replace(params, user_features=(), item_features=())
    return {"params": {k: v for k, v in dataclasses.asdict(params).items() if k not in FEATURE_FIELDS},
            "features": "ids only"}


class LightFMCFFamily(LightFMFamily):
    ranks = {"lightfm-cf": 3.0}  # its candidate's place in selection's order

    def default_config(self, base) -> dict:
        given = base.options.get(self.name) or {}
        if isinstance(given, TrainParams):
            return cf_config(given)
        return cf_config(dataclasses.replace(plain_lightfm(base.params.seed, base.params.threads), **given))

    def configurations(self, base) -> dict[str, dict]:
        return {self.name: self.default_config(base)}


FAMILY = LightFMCFFamily("lightfm-cf", "lightfm-cf", "LightFM CF (WARP on ids only)", features=False)
