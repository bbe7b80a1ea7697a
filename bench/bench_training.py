"""Training: seconds per LightFM epoch against the number of interactions (10^5, 10^6, 10^7).

For each size a synthetic shop is generated and aggregated into the training frame the
nightly run builds in SQL (per user and product: summed event weights, purchases,
spend; pairs with net weight <= 0 dropped), truncated to the size, and fitted with
``fit_hybrid`` at the production settings (``TrainParams`` defaults, all cores). Each
epoch is timed inside LightFM (``_run_epoch``); the rest of ``fit_hybrid`` is the
setup (features, dataset). Reference, in the same run: the same interactions fitted
by a bare LightFM without features (pure collaborative filtering).
The end-to-end nightly run is ``bench/bench_nightly.py``.

``python -m bench.bench_training [--sizes 100000,1000000,10000000] [--epochs 3] [--max-seconds 900]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

import numpy as np
import pandas as pd

from bench.common import log, machine, quick, ratio, summary, write_result
from recsys.constants import EVENT_WEIGHTS, PURCHASE
from recsys.families.hybrid.fit import TrainParams, fit_hybrid

PAIRS_PER_USER = 14.0  # distinct (user, product) pairs per synthetic user over 30 days (measured, refined below)


def training_frame(n_pairs: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``n_pairs`` aggregated interactions of a synthetic shop, with its users and products."""
    from recsys.data.synthetic import generate_shop

    n_users = int(n_pairs / PAIRS_PER_USER * 1.15) + 100
    n_products = max(1000, n_pairs // 200)
    shop = generate_shop(n_users=n_users, n_products=n_products, days=30, seed=seed, end_date=dt.date(2026, 11, 20))
    ev = shop.events[["user_id", "product_id", "event_type", "price"]]
    weights = ev["event_type"].map(EVENT_WEIGHTS).astype(float)
    buy = (ev["event_type"] == PURCHASE)
    agg = pd.DataFrame({"user_id": ev["user_id"], "product_id": ev["product_id"], "weight": weights,
                        "purchases": buy.astype(int), "spend": ev["price"].fillna(0.0).where(buy, 0.0)})
    frame = agg.groupby(["user_id", "product_id"], as_index=False, sort=True).sum()
    frame = frame[frame["weight"] > 0].reset_index(drop=True)
    if len(frame) < n_pairs:
        log(f"only {len(frame)} pairs generated for {n_pairs}: using them all")
    return frame.iloc[:n_pairs], shop.users, shop.products


class EpochTimer:
    """Patches ``lightfm.LightFM`` for one fit: the seconds of each epoch and the fitted matrices."""

    def __enter__(self):
        import lightfm

        timer = self
        self.epochs: list[float] = []
        self.fit_args: dict = {}
        self._orig = lightfm.LightFM

        class TimedLightFM(self._orig):
            def fit(self, interactions, user_features=None, item_features=None, sample_weight=None, epochs=1,
                    num_threads=1, verbose=False):
                timer.fit_args = {"interactions": interactions, "sample_weight": sample_weight,
                                  "num_threads": num_threads}
                return super().fit(interactions, user_features, item_features, sample_weight, epochs,
                                   num_threads, verbose)

            def _run_epoch(self, *args):
                start = time.perf_counter()
                super()._run_epoch(*args)
                timer.epochs.append(time.perf_counter() - start)

        lightfm.LightFM = TimedLightFM
        return self

    def __exit__(self, *exc):
        import lightfm

        lightfm.LightFM = self._orig


def reference_epochs(fit_args: dict, params: TrainParams, epochs: int) -> list[float]:
    """Bare LightFM (identity features only) on the same interactions: seconds per epoch."""
    from lightfm import LightFM

    model = LightFM(no_components=params.no_components, loss=params.loss, learning_rate=params.learning_rate,
                    random_state=np.random.RandomState(params.seed))
    out = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit_partial(fit_args["interactions"], sample_weight=fit_args["sample_weight"], epochs=1,
                          num_threads=fit_args["num_threads"])
        out.append(time.perf_counter() - start)
    return out


def measure_size(n_pairs: int, epochs: int, threads: int, seed: int) -> dict:
    start = time.perf_counter()
    frame, users, products = training_frame(n_pairs, seed)
    gen_s = time.perf_counter() - start
    params = TrainParams(epochs=epochs, threads=threads, seed=seed)
    with EpochTimer() as timer:
        start = time.perf_counter()
        fit_hybrid(frame, users, products, params)
        fit_s = time.perf_counter() - start
    ref = reference_epochs(timer.fit_args, params, epochs)
    hybrid = summary(timer.epochs)
    out = {"interactions": int(len(frame)), "users": int(frame["user_id"].nunique()),
           "products": int(frame["product_id"].nunique()), "threads": params.num_threads,
           "no_components": params.no_components, "loss": params.loss, "epochs_timed": epochs,
           "epoch_seconds": hybrid, "setup_seconds": fit_s - sum(timer.epochs), "fit_seconds": fit_s,
           "reference_cf_epoch_seconds": summary(ref), "ratio_hybrid_to_cf": ratio(hybrid, summary(ref)),
           "interactions_per_s": len(frame) / hybrid["median"], "generate_seconds": gen_s}
    log(f"{len(frame)} interactions, {params.num_threads} threads: {hybrid['median']:.2f} s/epoch "
        f"(CF {out['reference_cf_epoch_seconds']['median']:.2f}), setup {out['setup_seconds']:.1f}s")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000" if quick() else "100000,1000000,10000000")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", default="0" if quick() else "0,1", help="thread counts to time (0 = all cores); "
                        "one thread only below --single-thread-max")
    parser.add_argument("--single-thread-max", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=float, default=1200, help="skip sizes once this much time is spent")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    started, info = time.perf_counter(), machine()
    rows, skipped = [], []
    for n in (int(s) for s in args.sizes.split(",")):
        if time.perf_counter() - started > args.max_seconds:
            skipped.append(n)
            log(f"time box of {args.max_seconds}s reached: {n} interactions skipped")
            continue
        for threads in (int(t) for t in args.threads.split(",")):
            if threads == 1 and n > args.single_thread_max:
                continue
            rows.append(measure_size(n, args.epochs, threads, args.seed))
    write_result("training", {"machine": info, "cpu_count": os.cpu_count(), "sizes": rows, "skipped": skipped,
                              "max_seconds": args.max_seconds},
                 started, "python -m bench.bench_training " + " ".join(argv or []))


if __name__ == "__main__":
    main()
