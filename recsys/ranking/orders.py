"""Orders: which purchases were bought together, in one order.

An order is a purchase event's ``session_id`` (the invoice of Online Retail: its loader maps InvoiceNo to
``session_id``), of its user; a purchase without a session id is in the order of its user and UTC day.
Used by the co-purchase lists (``bought_together``) and the repurchase intervals (``repurchase``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.constants import COL_SESSION, COL_TIMESTAMP, COL_USER, MS_PER_DAY


def order_keys(purchases: pd.DataFrame) -> np.ndarray:
    """One code per row of ``purchases`` (``user_id``, ``session_id``, ``timestamp``): equal codes, one order."""
    session = purchases[COL_SESSION]
    day = "d" + (purchases[COL_TIMESTAMP].astype("int64") // MS_PER_DAY).astype(str)
    label = ("s" + session.astype(str)).where(session.notna(), day)
    return pd.factorize(purchases[COL_USER].astype("int64").astype(str) + "|" + label)[0]
