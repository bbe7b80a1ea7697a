"""A synthetic shop whose events are driven by hidden tastes a model can learn.

Hidden truth: every product has a latent vector (its category's direction plus
the direction of the *style* word in its name plus noise); every user a taste
vector concentrated on 1-3 categories (drawn with a country-specific prior) and
on one style. A session picks products with probability
``softmax(BETA * taste . item + log popularity)``: views follow the taste and
the popularity, while clicks, carts, purchases and returns depend on the
affinity ``taste . item`` (high affinity buys more and returns less). So a
popularity ranking misses what a model of users and item features can learn.

Everything is vectorised numpy (sampling runs per chunk of users over the whole
catalogue with one cumulative sum), and every random step draws from child
generators of ``seed``: the same arguments give the same shop.

With ``burst_days`` every user's sessions fall in one burst of that many days (a log where users come,
shop for a few days and leave: a time split of the newest days then holds few users), drawn from a random
stream of its own, so the default shop is unchanged.

A day with drift (a category's share or the device mix shifted) is made from a generated shop
by ``recsys.data.shift.shift_day``; ``generate_shop`` itself never shifts anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.constants import ADD_TO_CART, CLICK, MS_PER_DAY, PURCHASE, RETURN, VIEW, WISHLIST
from recsys.data import vocab
from recsys.timeutil import day_bounds_ms, day_start_ms

USER_COLUMNS = ("user_id", "country", "language", "device_type", "first_seen_at", "last_seen_at")
PRODUCT_COLUMNS = ("product_id", "name", "category", "price", "margin", "in_stock", "created_at", "last_updated_at")
SHOP_EVENT_COLUMNS = ("user_id", "product_id", "event_type", "session_id", "timestamp", "price", "client_event_id")

N_FACTORS = 16
BETA = 4.0  # weight of the hidden taste against log popularity when a session picks products
NEW_ITEM_SHARE = 0.05  # products created during the last NEW_WINDOW_DAYS (a third of them get no traffic)
NEW_USER_SHARE = 0.06  # users who join during the last NEW_WINDOW_DAYS
NEW_WINDOW_DAYS = 5
HOUR_MS = 3_600_000
BURST_STREAM = 25  # the bursts' own random stream: np.random.default_rng([seed, BURST_STREAM])
_TYPES = (VIEW, CLICK, WISHLIST, ADD_TO_CART, PURCHASE, RETURN)  # codes 0..5, also the order within a pick


@dataclass
class Shop:
    """Users, products and events in the columns of the data model; optional hidden truth.

    ``user_taste[i]`` is the taste of user ``i + 1`` and ``item_factors[j]`` the
    latent vector of product ``j + 1`` (synthetic shops only).
    """

    users: pd.DataFrame
    products: pd.DataFrame
    events: pd.DataFrame
    user_taste: np.ndarray | None = None
    item_factors: np.ndarray | None = None


@dataclass
class _Items:
    frame: pd.DataFrame
    factors: np.ndarray
    log_pop: np.ndarray
    created_ms: np.ndarray
    price: np.ndarray


@dataclass
class _People:
    frame: pd.DataFrame
    taste: np.ndarray
    join_ms: np.ndarray
    active_from: np.ndarray
    n_sessions: np.ndarray
    active_to: np.ndarray | None = None  # sessions start before this (a burst's end); None: the end of the log


def generate_shop(*, n_users: int, n_products: int, days: int, seed: int, end_date: dt.date,
                  burst_days: int | None = None) -> Shop:
    """A shop with ``days`` days of events ending on ``end_date`` (UTC, inclusive). With ``burst_days``, each
    user is active in one burst: all its sessions start within ``burst_days`` days from a time drawn
    uniformly over its active period (its own random stream: without bursts the shop is unchanged)."""
    _check_args(n_users=n_users, n_products=n_products, days=days, seed=seed, end_date=end_date)
    if burst_days is not None and (isinstance(burst_days, bool) or not isinstance(burst_days, (int, np.integer))
                                   or burst_days < 1):
        raise ValueError(f"burst_days must be a positive integer, got {burst_days!r}")
    start_ms = day_start_ms(end_date - dt.timedelta(days=days - 1))
    end_ms = day_bounds_ms(end_date)[1]
    rng_space, rng_items, rng_users, rng_events = np.random.default_rng(seed).spawn(4)
    cat_vecs = _unit_rows(rng_space, len(vocab.CATEGORIES))
    style_vecs = _unit_rows(rng_space, len(vocab.STYLES))
    items = _make_products(rng_items, n_products, cat_vecs, style_vecs, start_ms, end_ms)
    people = _make_users(rng_users, n_users, cat_vecs, style_vecs, start_ms, end_ms)
    if burst_days is not None:
        people = _in_bursts(np.random.default_rng([seed, BURST_STREAM]), people, burst_days, end_ms)
    events = _simulate_events(rng_events, items, people, seed, end_ms)
    users = _with_seen_times(people, events)
    return Shop(users=users, products=items.frame, events=events, user_taste=people.taste, item_factors=items.factors)


def _check_args(*, n_users, n_products, days, seed, end_date) -> None:
    for name, value in (("n_users", n_users), ("n_products", n_products), ("days", days)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(end_date, dt.datetime) or not isinstance(end_date, dt.date):
        raise ValueError(f"end_date must be a datetime.date, got {end_date!r}")


def _unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, N_FACTORS))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _noise(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    return scale * rng.normal(size=(n, N_FACTORS)) / np.sqrt(N_FACTORS)


def _to_utc(ms: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ms, unit="ms", utc=True))


def _make_products(rng, m: int, cat_vecs, style_vecs, start_ms: int, end_ms: int) -> _Items:
    cats = vocab.CATEGORIES
    shares = np.array([c[1] for c in cats])
    cat = rng.choice(len(cats), size=m, p=shares / shares.sum())
    style = rng.integers(len(vocab.STYLES), size=m)
    colour = rng.integers(len(vocab.COLOURS), size=m)
    n_nouns = np.array([len(c[4]) for c in cats])
    noun = np.cumsum(n_nouns)[cat] - n_nouns[cat] + (rng.random(m) * n_nouns[cat]).astype(np.int64)
    words = (np.array([s[0] for s in vocab.STYLES], dtype=object)[style] + " "
             + np.array(vocab.COLOURS, dtype=object)[colour] + " "
             + np.array([n for c in cats for n in c[4]], dtype=object)[noun])
    factors = cat_vecs[cat] + 0.6 * style_vecs[style] + _noise(rng, m, 0.3)
    median, sigma = np.array([c[2] for c in cats]), np.array([c[3] for c in cats])
    style_mult = np.array([s[1] for s in vocab.STYLES])
    price = np.maximum(np.round(median[cat] * np.exp(sigma[cat] * rng.normal(size=m)) * style_mult[style], 2), 0.5)
    margin = np.round(rng.uniform(0.05, 0.6, size=m), 3)
    in_stock = rng.random(m) < 0.9
    log_pop = rng.normal(0.0, 1.0, size=m)
    created = start_ms - (rng.uniform(30, 730, size=m) * MS_PER_DAY).astype(np.int64)
    new = rng.permutation(m)[: int(round(NEW_ITEM_SHARE * m))]
    window = min(NEW_WINDOW_DAYS * MS_PER_DAY, end_ms - start_ms)
    created[new] = end_ms - rng.integers(HOUR_MS, window, size=len(new))
    log_pop[new] += 1.0  # new arrivals get attention...
    log_pop[new[: len(new) // 3]] = -np.inf  # ...except the ones nobody has seen yet
    updated = created + (rng.random(m) * (end_ms - 1 - created)).astype(np.int64)
    frame = pd.DataFrame({
        "product_id": np.arange(1, m + 1, dtype=np.int64), "name": pd.array(words, dtype="str"),
        "category": pd.array(np.array([c[0] for c in cats], dtype=object)[cat], dtype="str"),
        "price": price, "margin": margin, "in_stock": in_stock,
        "created_at": _to_utc(created), "last_updated_at": _to_utc(updated),
    })
    return _Items(frame=frame, factors=factors, log_pop=log_pop, created_ms=created, price=price)


def _make_users(rng, n: int, cat_vecs, style_vecs, start_ms: int, end_ms: int) -> _People:
    countries = vocab.COUNTRIES
    c_share = np.array([c[1] for c in countries])
    country = rng.choice(len(countries), size=n, p=c_share / c_share.sum())
    first, second = (np.array([c[i] for c in countries], dtype=object) for i in (2, 3))
    language = np.where(rng.random(n) < np.array([c[4] for c in countries])[country], second[country], first[country])
    devices = vocab.DEVICE_SHARES
    device = rng.choice(np.array([d[0] for d in devices], dtype=object), size=n, p=[d[1] for d in devices])
    taste = _tastes(rng, country, len(countries), cat_vecs, style_vecs)
    new = rng.permutation(n)[: int(round(NEW_USER_SHARE * n))]
    join = start_ms - (rng.uniform(1, 720, size=n) * MS_PER_DAY).astype(np.int64)
    window = min(NEW_WINDOW_DAYS * MS_PER_DAY, end_ms - start_ms)
    join[new] = end_ms - rng.integers(3 * HOUR_MS, window, size=len(new))
    active_from = np.maximum(join, start_ms)
    per_day = rng.lognormal(np.log(0.12), 1.0, size=n)  # heavy-tailed activity
    n_sessions = 1 + rng.poisson(per_day * (end_ms - active_from) / MS_PER_DAY)
    frame = pd.DataFrame({
        "user_id": np.arange(1, n + 1, dtype=np.int64),
        "country": pd.array(np.array([c[0] for c in countries], dtype=object)[country], dtype="str"),
        "language": pd.array(language, dtype="str"), "device_type": pd.array(device, dtype="str"),
    })
    return _People(frame=frame, taste=taste, join_ms=join, active_from=active_from, n_sessions=n_sessions)


def _in_bursts(rng, people: _People, burst_days: int, end_ms: int) -> _People:
    """``people`` with each user's sessions inside one burst of ``burst_days`` days."""
    last = end_ms - 2 * HOUR_MS  # as in _simulate_picks: the latest session start
    latest_start = np.maximum(people.active_from, last - burst_days * MS_PER_DAY)
    begin = people.active_from + (rng.random(len(people.active_from))
                                  * (latest_start - people.active_from)).astype(np.int64)
    return dataclasses.replace(people, active_from=begin, active_to=np.minimum(begin + burst_days * MS_PER_DAY, last))


def _tastes(rng, country: np.ndarray, n_countries: int, cat_vecs, style_vecs) -> np.ndarray:
    """1-3 favourite categories per user (country-specific prior) plus one favourite style."""
    n, n_cat = len(country), len(cat_vecs)
    shares = np.array([c[1] for c in vocab.CATEGORIES])
    prior = shares[None, :] * np.exp(0.6 * rng.normal(size=(n_countries, n_cat)))
    keys = np.log(prior[country]) + rng.gumbel(size=(n, n_cat))  # Gumbel top-k: sampling without replacement
    top = np.argsort(-keys, axis=1)[:, :3]
    k = rng.choice([1, 2, 3], size=n, p=[0.35, 0.4, 0.25])
    w = rng.gamma(2.0, size=(n, 3)) * (np.arange(3)[None, :] < k[:, None])
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    style = rng.integers(len(style_vecs), size=n)
    return np.einsum("nk,nkd->nd", w, cat_vecs[top]) + 0.6 * style_vecs[style] + _noise(rng, n, 0.3)


def _sample_items(rng, taste: np.ndarray, factors: np.ndarray, log_pop: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``counts[u]`` draws for each user u from softmax(BETA * taste . item + log_pop), by inverse CDF.

    Per chunk of users, one cumulative sum over (users x items); row r of it is
    shifted by r so that a single ``searchsorted`` serves every user of the chunk.
    """
    n_items = factors.shape[0]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    out = np.empty(bounds[-1], dtype=np.int64)
    rows = max(1, 4_000_000 // n_items)
    for a in range(0, len(counts), rows):
        b = min(a + rows, len(counts))
        logits = BETA * (taste[a:b] @ factors.T) + log_pop
        logits -= logits.max(axis=1, keepdims=True)
        cdf = np.cumsum(np.exp(logits), axis=1)
        cdf /= cdf[:, -1:]
        cdf += np.arange(b - a)[:, None]
        row = np.repeat(np.arange(b - a), counts[a:b])
        draws = row + rng.random(len(row)) * (1.0 - 1e-9)
        idx = np.searchsorted(cdf.ravel(), draws, side="right") - row * n_items
        out[bounds[a] : bounds[b]] = np.minimum(idx, n_items - 1)
    return out


def _affinity(taste: np.ndarray, factors: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    out = np.empty(len(users))
    for a in range(0, len(users), 500_000):
        sl = slice(a, a + 500_000)
        out[sl] = np.einsum("ij,ij->i", taste[users[sl]], factors[items[sl]])
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _simulate_picks(rng, items: _Items, people: _People, end_ms: int) -> dict[str, np.ndarray]:
    """Sessions and the products they look at: one row per (session, product) pick."""
    n_sess = people.n_sessions
    sess_user = np.repeat(np.arange(len(n_sess)), n_sess)
    lo = people.active_from[sess_user]
    hi = end_ms - 2 * HOUR_MS if people.active_to is None else people.active_to[sess_user]
    sess_start = lo + (rng.random(len(sess_user)) * (hi - lo)).astype(np.int64)
    per_sess = 1 + rng.poisson(2.0, size=len(sess_user))
    sess = np.repeat(np.arange(len(sess_user)), per_sess)
    pos = np.arange(len(sess)) - (np.cumsum(per_sess) - per_sess)[sess]
    ts = sess_start[sess] + pos * 120_000 + rng.integers(0, 60_000, size=len(sess))
    user = sess_user[sess]
    item = _sample_items(rng, people.taste, items.factors, items.log_pop, np.bincount(user, minlength=len(n_sess)))
    keep = ts >= items.created_ms[item]  # nobody sees a product before it exists
    return {"user": user[keep], "item": item[keep], "sess": sess[keep], "ts": ts[keep]}


def _simulate_events(rng, items: _Items, people: _People, seed: int, end_ms: int) -> pd.DataFrame:
    p = _simulate_picks(rng, items, people, end_ms)
    n = len(p["user"])
    a = _affinity(people.taste, items.factors, p["user"], p["item"])
    z = (a - a.mean()) / (a.std() or 1.0) if n else a
    u = rng.random((n, 5))
    click = u[:, 0] < _sigmoid(-1.0 + 0.8 * z)
    cart = u[:, 1] < _sigmoid(-2.3 + 1.2 * z)
    buy = cart & (u[:, 2] < _sigmoid(0.2 + 0.8 * z))
    wish = ~cart & (u[:, 3] < _sigmoid(-4.0 + 0.8 * z))
    buy_ts = np.minimum(p["ts"] + rng.integers(60_000, 300_000, size=n), end_ms - 1)
    ret_ts = buy_ts + rng.integers(6 * HOUR_MS, 6 * MS_PER_DAY, size=n)
    ret = buy & (u[:, 4] < _sigmoid(-2.5 - 0.8 * z)) & (ret_ts < end_ms)
    offsets = (p["ts"], p["ts"] + rng.integers(3_000, 20_000, size=n), p["ts"] + 25_000,
               p["ts"] + rng.integers(30_000, 60_000, size=n), buy_ts, ret_ts)
    masks = (np.ones(n, dtype=bool), click, wish, cart, buy, ret)
    parts = [np.flatnonzero(m) for m in masks]
    pick = np.concatenate(parts)
    code = np.concatenate([np.full(len(ix), c, dtype=np.int64) for c, ix in enumerate(parts)])
    ts = np.minimum(np.concatenate([off[ix] for off, ix in zip(offsets, parts)]), end_ms - 1)
    order = np.lexsort((code, p["item"][pick], p["user"][pick], ts))
    pick, code, ts = pick[order], code[order], ts[order]
    return _event_frame(p, pick, code, ts, items.price, seed)


def _event_frame(p, pick, code, ts, price, seed: int) -> pd.DataFrame:
    item = p["item"][pick]
    priced = code >= _TYPES.index(ADD_TO_CART)
    session = f"syn-{seed}-s" + pd.Series(p["sess"][pick]).astype("str")
    is_return = code == _TYPES.index(RETURN)
    session[is_return] = session[is_return] + "-r"
    return pd.DataFrame({
        "user_id": p["user"][pick] + 1,
        "product_id": item + 1,
        "event_type": pd.array(np.array(_TYPES, dtype=object)[code], dtype="str"),
        "session_id": session,
        "timestamp": ts.astype(np.int64),
        "price": np.where(priced, price[item], np.nan),
        "client_event_id": f"syn-{seed}-" + pd.Series(np.arange(len(pick))).astype("str"),
    })


def _with_seen_times(people: _People, events: pd.DataFrame) -> pd.DataFrame:
    last = people.join_ms.copy()
    np.maximum.at(last, events["user_id"].to_numpy() - 1, events["timestamp"].to_numpy())
    users = people.frame.copy()
    users["first_seen_at"] = _to_utc(people.join_ms)
    users["last_seen_at"] = _to_utc(last)
    return users
