"""The names of a vector model's published files (``files`` writes and reads them; importing this is cheap)."""

USER_IDS, USER_VECTORS = "user_ids.npy", "user_vectors.npy"
ITEM_IDS, ITEM_VECTORS, ITEM_NORMS = "item_ids.npy", "item_vectors.npy", "item_norms.npy"
EMBEDDING_FILES = (USER_IDS, USER_VECTORS, ITEM_IDS, ITEM_VECTORS, ITEM_NORMS)  # write order
LEGACY_FILE = "embeddings.npz"  # an earlier version's single archive
