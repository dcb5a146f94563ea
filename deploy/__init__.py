"""Deployment: embedded dev broker, compilation, container and cluster manifests."""
