"""The names of an item-kNN model's published files (``files`` writes and reads them; importing this is cheap)."""

NEIGHBOUR_MARKER = "neighbour_data.npy"  # written last: its presence means the set is complete
NEIGHBOUR_FILES = ("user_ids.npy", "history_indptr.npy", "history_indices.npy", "history_data.npy",
                   "item_ids.npy", "neighbour_indptr.npy", "neighbour_indices.npy", NEIGHBOUR_MARKER)  # write order
