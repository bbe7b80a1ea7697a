"""Lab tools, not part of the production pipeline or API: the traffic simulator
(``python -m recsys simulate``), the A/B calibration repetitions and the end-to-end experiment."""
