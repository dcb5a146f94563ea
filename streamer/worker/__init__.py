"""The streaming worker: a Faust app around pure per-bed pieces (see app.py for the pipeline)."""
