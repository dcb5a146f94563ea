"""`enecg bench`: in-process capacity per CPU core (per backend and the naive path), scaling with batch size and
beds, and end-to-end latency on the dev broker with the worker's CPU and memory per bed."""
