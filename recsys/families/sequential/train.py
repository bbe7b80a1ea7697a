"""Seeded training of the sequential model with early stopping on the leave-last-out validation.

Loss: full softmax cross-entropy over every vocabulary product at every position that has a
next product (SASRec with CE, as in Klenitskiy & Vasilev, RecSys'23). Validation: NDCG@10 of
each user's newest product among all products (products already in the input excluded when
``distinct``); the epoch with the best value is kept. Without validation users, the training
loss decides. NDCG saturates on easy data: the validation cross-entropy breaks its ties.
Deterministic for a seed on CPU (``torch.use_deterministic_algorithms``).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recsys.families.sequential.config import FIRST_ITEM, PAD, SequentialConfig
from recsys.families.sequential.data import ItemVocab, TrainingData, build_vocab, make_training_data, user_sequences
from recsys.families.sequential.model import SequentialModel

log = logging.getLogger(__name__)
VAL_K = 10
EVAL_BATCH = 512


@dataclass
class FittedSequential:
    model: SequentialModel
    vocab: ItemVocab
    config: SequentialConfig
    history: list[dict] = field(default_factory=list)  # per epoch: loss, val_ndcg, seconds
    best_epoch: int = 0
    stopped: str = ""  # "patience" | "max_epochs" | "time_budget"
    seconds: float = 0.0  # wall time
    cpu_seconds: float = 0.0  # CPU time of the process (all threads)

    def summary(self) -> dict:
        return {"best_epoch": self.best_epoch, "epochs": len(self.history), "stopped": self.stopped,
                "seconds": round(self.seconds, 1),
                "cpu_seconds": round(self.cpu_seconds, 1), "products": len(self.vocab),
                "best_val_ndcg@10": max((h["val_ndcg"] for h in self.history if h["val_ndcg"] is not None),
                                        default=None)}


def new_model(vocab: ItemVocab, config: SequentialConfig) -> SequentialModel:
    cats, bands = vocab.attribute_table()
    return SequentialModel(config, torch.from_numpy(cats), torch.from_numpy(bands), len(vocab.categories))


@torch.no_grad()
def validate(model: SequentialModel, inputs: np.ndarray, targets: np.ndarray,
             exclude_inputs: bool) -> tuple[float, float]:
    """``(ndcg@10, loss)``: mean NDCG@10 of each target among all vocabulary products (ties count
    against the target) and mean cross-entropy, with the input's products excluded if asked."""
    model.eval()
    items = model.item_vectors()
    ndcg = loss = 0.0
    for start in range(0, len(inputs), EVAL_BATCH):
        x = torch.from_numpy(inputs[start:start + EVAL_BATCH])
        scores = model(x)[:, -1] @ items.T
        if exclude_inputs:
            seen = torch.zeros(len(x), FIRST_ITEM + items.shape[0], dtype=torch.bool).scatter_(1, x, True)
            scores = scores.masked_fill(seen[:, FIRST_ITEM:], -torch.inf)
        y = torch.from_numpy(targets[start:start + EVAL_BATCH]) - FIRST_ITEM
        rank = (scores > scores.gather(1, y[:, None])).sum(1)
        ndcg += float(torch.where(rank < VAL_K, 1.0 / torch.log2(rank + 2.0), 0.0).sum())
        loss += float(F.cross_entropy(scores, y, reduction="sum"))
    return ndcg / len(inputs), loss / len(inputs)


def _epoch(model, optimizer, data: TrainingData, batch_size: int, rng: np.random.Generator,
           deadline: float = np.inf) -> tuple[float, bool]:
    """One pass over the training windows in a seeded order: ``(mean loss, cut)``; ``cut`` when the
    wall clock (``time.perf_counter``) passed ``deadline`` before the last batch (checked per batch)."""
    model.train()
    order = rng.permutation(len(data.inputs))
    losses = []
    for start in range(0, len(order), batch_size):
        if losses and time.perf_counter() >= deadline:
            return float(np.mean(losses)), True
        rows = order[start:start + batch_size]
        x, y = torch.from_numpy(data.inputs[rows]), torch.from_numpy(data.targets[rows])
        has_next = y != PAD
        states = model(x)[has_next]
        loss = F.cross_entropy(states @ model.item_vectors().T, y[has_next] - FIRST_ITEM)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses)), False


def train_model(vocab: ItemVocab, data: TrainingData, config: SequentialConfig) -> FittedSequential:
    """Train on ``data`` (vocabulary indices of ``vocab``) until validation stops improving."""
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    model = new_model(vocab, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    fitted = FittedSequential(model, vocab, config)
    best, best_state, waited, started = (-np.inf, -np.inf), None, 0, time.perf_counter()
    cpu_started = time.process_time()
    deadline = started + config.time_budget_s
    for epoch in range(1, config.max_epochs + 1):
        loss, cut = _epoch(model, optimizer, data, config.batch_size, rng, deadline)
        ndcg, val_loss = validate(model, data.val_inputs, data.val_targets, config.distinct) \
            if len(data.val_inputs) else (None, None)
        elapsed = time.perf_counter() - started
        fitted.history.append({"epoch": epoch, "loss": round(loss, 5), "val_ndcg": ndcg, "val_loss": val_loss,
                               "seconds": round(elapsed, 1), "partial": cut})
        log.info("sequential epoch %d: loss %.4f, val ndcg@10 %s, val loss %s (%.0f s)", epoch, loss, ndcg,
                 val_loss, elapsed)
        # NDCG@10 first; the validation loss breaks ties (NDCG saturates on easy data); no validation: training loss
        criterion = (ndcg, -val_loss) if ndcg is not None else (0.0, -loss)
        if criterion > best:
            best, best_state, waited, fitted.best_epoch = criterion, copy.deepcopy(model.state_dict()), 0, epoch
        else:
            waited += 1
        if waited >= config.patience:
            fitted.stopped = "patience"
            break
        if cut or time.perf_counter() >= deadline:
            fitted.stopped = "time_budget"
            break
    else:
        fitted.stopped = "max_epochs"
    model.load_state_dict(best_state)
    model.eval()
    fitted.seconds = time.perf_counter() - started
    fitted.cpu_seconds = time.process_time() - cpu_started
    return fitted


def fit_sequential(events: pd.DataFrame, products: pd.DataFrame,
                   config: SequentialConfig = SequentialConfig()) -> FittedSequential:
    """Sequences of ``events``, the vocabulary of their products (attributes from ``products``), trained."""
    sequences = user_sequences(events, config.distinct)
    if not sequences:
        raise ValueError("no user has a positive event: nothing to train the sequential model on")
    vocab = build_vocab(np.concatenate(list(sequences.values())), products)
    data = make_training_data([vocab.indices(s) for s in sequences.values()], config.max_len, config.min_sequence)
    log.info("sequential: %d products, %d training windows, %d validation users",
             len(vocab), len(data.inputs), len(data.val_inputs))
    return train_model(vocab, data, config)
