"""Analysis of stored runs: it reads only the run contract (index.csv, episodes.csv, meta.json) and never
imports the algorithms."""
