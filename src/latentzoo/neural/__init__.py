"""Neural models on PyTorch: one training engine for AE, DAE, CAE, VAE and beta-VAE."""
