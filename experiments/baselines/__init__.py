"""The baselines our implementations are checked against: Stable-Baselines3 / sb3-contrib (sb3.py), run under
each paper config's hyperparameters with every remaining difference recorded."""
