"""Trained image generators behind the parameterizations: the VQGAN and the CLIP-conditioned CVAE."""
