"""What the families whose score is ``user_vector @ item_vector`` share (hybrid, LightFM CF, implicit ALS,
EASE, the sequential model's encoded states): the batch scorer, the published ``.npy`` files
(``files``) and their memory-mapped form in the API (``served``)."""
