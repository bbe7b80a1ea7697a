"""Names shared by every part of recsys: event types, columns, Redis keys, defaults."""

from __future__ import annotations

# --- events -----------------------------------------------------------------
CLICK = "CLICK"
VIEW = "VIEW"
PURCHASE = "PURCHASE"
WISHLIST = "WISHLIST"
RETURN = "RETURN"
ADD_TO_CART = "ADD_TO_CART"
IMPRESSION = "IMPRESSION"
EVENT_TYPES = (CLICK, VIEW, PURCHASE, WISHLIST, RETURN, ADD_TO_CART, IMPRESSION)
CLIENT_EVENT_TYPES = tuple(t for t in EVENT_TYPES if t != IMPRESSION)  # impressions are logged by the server only
RESERVED_EVENT_ID_PREFIX = "imp:"  # client_event_id of the flusher's IMPRESSION rows: imp:{stream id}:{position}

# --- the database's integer range (BigInteger ids and epoch-ms timestamps) ----
MAX_DB_INT = 2**63 - 1  # every integer id or timestamp the API or the flusher accepts is at most this

# implicit-feedback weight of each event type in training (RETURN cancels)
EVENT_WEIGHTS = {VIEW: 1.0, CLICK: 2.0, WISHLIST: 2.0, ADD_TO_CART: 3.0, PURCHASE: 5.0, RETURN: -5.0, IMPRESSION: 0.0}
# positive events: the training signal and the truth of every evaluation (nightly hold-out day, `evaluate`)
POSITIVE_EVENTS = tuple(t for t, w in EVENT_WEIGHTS.items() if w > 0)
# what counts as already seen (RECSYS_EXCLUDE_SEEN): never recommended again, never counted as a hit
EXCLUDE_PURCHASED = "purchased"
EXCLUDE_INTERACTED = "interacted"
SEEN_PRESETS = {EXCLUDE_PURCHASED: (PURCHASE,), EXCLUDE_INTERACTED: tuple(t for t in EVENT_TYPES if t != IMPRESSION)}
# the latest events of a user that seed the session (API) and its offline replay (evaluation)
HISTORY_EVENTS = 50

# --- columns of an extracted event partition --------------------------------
COL_EVENT_ID = "event_id"
COL_USER = "user_id"
COL_ITEM = "product_id"
COL_EVENT_TYPE = "event_type"
COL_SESSION = "session_id"
COL_TIMESTAMP = "timestamp"  # epoch milliseconds, UTC
COL_PRICE = "price"
EVENT_COLUMNS = (COL_EVENT_ID, COL_USER, COL_ITEM, COL_EVENT_TYPE, COL_SESSION, COL_TIMESTAMP, COL_PRICE)

MS_PER_DAY = 86_400_000

# --- models -----------------------------------------------------------------
STATUS_TRAINING = "TRAINING"
STATUS_CANDIDATE = "CANDIDATE"
STATUS_LIVE = "LIVE"
STATUS_ARCHIVED = "ARCHIVED"
MODEL_STATUSES = (STATUS_TRAINING, STATUS_CANDIDATE, STATUS_LIVE, STATUS_ARCHIVED)
# attribute groups the hybrid model can learn from (RECSYS_USER_FEATURES / RECSYS_ITEM_FEATURES)
USER_FEATURE_GROUPS = ("country", "language", "device_type", "segment")
ITEM_FEATURE_GROUPS = ("category", "price", "name")
DEFAULT_K = 10
RANKING_METRICS = ("precision", "recall", "ndcg", "map")  # "<metric>@<k>" ranks models (model selection)

# --- nightly step records (pipeline_runs.status) ----------------------------
STEP_SUCCESS = "SUCCESS"
STEP_FAILED = "FAILED"
STEP_SKIPPED = "SKIPPED"
STEP_STATUSES = (STEP_SUCCESS, STEP_FAILED, STEP_SKIPPED)
STEP_DRIFT = "drift"                # recsys.drift.report.drift_report: its details feed the drift metrics
STEP_OUTPUT_DRIFT = "output_drift"  # recsys.drift.report.output_drift

# --- segments (geography x device x value) ----------------------------------
REGIONS = ("US", "EU", "APAC", "OTHER")
DEVICES = ("mobile", "desktop")
VALUE_SEGMENTS = ("whale", "regular", "new")

# --- reasons ----------------------------------------------------------------
REASON_LIKE_YOU = "Customers like you also bought..."
REASON_VIEWED_CATEGORY = "Because you viewed {category}"
REASON_POPULAR_IN = "Popular in {category}"
REASON_TRENDING = "Trending now"
REASON_NEW_ARRIVAL = "New arrival"
REASON_GOES_WITH = "Goes with your {product}"
REASON_JUST_VIEWED = "Because you just viewed {product}"  # a real-time model: next after this product
# RECSYS_REASONS=generic: the same rules, without naming the user's own products
REASON_GOES_WITH_GENERIC = "Goes with your recent purchase"
REASON_JUST_VIEWED_GENERIC = "Because of what you just viewed"
REASONS_PERSONAL, REASONS_GENERIC = "personal", "generic"
REASON_MODES = (REASONS_PERSONAL, REASONS_GENERIC)
REASON_BOUGHT_TOGETHER = "Customers who bought this also bought"  # /recommendations/similar
REASON_SIMILAR = "Similar to {product}"                          # /recommendations/similar, embeddings only
REASON_BOUGHT_WITH_BASKET = "Frequently bought together"        # /recommendations/basket: co-purchases
REASON_BUY_AGAIN = "Buy it again"                                # /recommendations/buy-again (and its slots)
REASON_RECENTLY_VIEWED = "Recently viewed"                       # /recommendations/recent

# Redis key names, hash tags and value encodings: recsys.keys (the only home of the key names)

# --- A/B tests (ab_tests.status, arms, winner) ----------------------------------
AB_RUNNING = "RUNNING"
AB_COMPLETED = "COMPLETED"  # ran to its end_at
AB_STOPPED = "STOPPED"      # ended early by POST /ab-tests/{id}/stop
AB_STATUSES = (AB_RUNNING, AB_COMPLETED, AB_STOPPED)
ARM_CONTROL = "control"
ARM_TREATMENT = "treatment"
ARMS = (ARM_CONTROL, ARM_TREATMENT)
WINNER_INCONCLUSIVE = "inconclusive"
