"""The EnECG model: experts, LoRA, MoE gates, task heads, export, runtimes and bundles.

Public API (import from the submodules):
- models.config: EnECGConfig (.of_size("tiny"|"base")), InputSpec, ExpertSpec, LoraSpec, GateSpec
- models.enecg: build_model(config) -> EnECG; EnECG.forward(x) -> dict[OUTPUT_NAMES];
  EnECG.forward_train(x) -> TrainOutput(outputs, logits, balance_loss)
- models.experts: create_expert(name, size, input_spec), known_experts(), register_expert(name)
- models.lora: wrap_lora(model, spec=None) -> PeftModel, merge_lora(peft) -> EnECG, parameter_report(model)
- models.export: export_program(model), export_onnx(model) -> bytes
- models.bundle: save_bundle(model, out_dir, BundleInfo, onnx_model=None) -> Manifest,
  load_bundle(dir) -> (Manifest, EnECG), read_manifest(dir) -> Manifest
- models.runtime: open_runtime(bundle_dir, backend, device, precision, threads) -> Runtime (.predict);
  throughput per backend is measured by `enecg bench` (streamer/bench)
- models.compile: compile_bundle(bundle_dir, out, backend, precision)
"""
