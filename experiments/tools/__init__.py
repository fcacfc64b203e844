"""The maintenance tools: speed benchmarks against SB3 (bench.py), the regression gate (regress.py), the
golden fingerprints (fingerprint.py), the README's generated sections (readme.py) and the random-policy scores
the reports normalise by (random_scores.py)."""
