"""The EnECG model: experts, LoRA, MoE gates, task heads, export, runtimes and bundles."""
