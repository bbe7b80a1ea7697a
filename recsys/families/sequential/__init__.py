"""The sequential session model (issue 14, the design's "Model A"): next product from a user's recent sequence.

A SASRec-style causal transformer (or a GRU, ``SequentialConfig.kind``) reads the last
``max_len`` products of a user, each embedded as id + category + price band, and
scores every product by the dot product of its final state with the same item
embeddings (tied input and output), trained with a full softmax / cross-entropy loss.

Modules, in the order of the data flow:

- ``config``: ``SequentialConfig`` (every knob, with its default) and the artifact file names.
- ``data``: events -> per-user product sequences, the item vocabulary with attributes,
  training windows and the leave-last-out validation split (numpy + pandas only).
- ``model``: the torch modules (``SequentialModel``).
- ``train``: seeded training with early stopping (``train_sequential``).
- ``export``: the ONNX encoder and the item matrix, id map and config as .npy / JSON.
- ``scoring``: ``load_runtime`` and ``score_next``: numpy + onnxruntime only, never torch,
  so the API can serve the model without the training dependencies (requirements-train.txt).
"""
