"""Our PyTorch implementations of the papers' algorithms, the shared core they are built from, and the
papers' hyperparameters as config files (``replications/configs/*.yaml``)."""
