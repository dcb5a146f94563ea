"""Produces EnECG bundles: data loaders, ECG synthesizer, pretraining, fine-tuning, evaluation."""
