"""Labelled ECG synthesizer: dynamical-model beats, rhythm generators, artefacts, scenarios, training windows."""
