"""`enecg compile`: build a checked serving artifact (ONNX bundle or TensorRT engine) from a model bundle."""

from __future__ import annotations

import argparse

from streamer.cli.main import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compile",
        help="export a bundle for ONNX Runtime or TensorRT, checked against eager torch",
        description="Verify BUNDLE, export its merged model and check the result against eager torch at "
        "batch 1, 7 and 64. onnx: writes OUT as a new bundle that also holds model.onnx. tensorrt (CUDA and "
        "torch_tensorrt needed): writes OUT as a raw TensorRT engine file.",
        epilog="examples:\n  enecg compile bundles/v1 --backend onnx -o bundles/v1-onnx\n"
        "  enecg compile bundles/v1 --backend tensorrt --precision fp16 -o v1.fp16.engine",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bundle", help="model bundle directory")
    parser.add_argument("--backend", choices=["onnx", "tensorrt"], required=True)
    parser.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="default: %(default)s")
    parser.add_argument("-o", "--output", required=True, help="new bundle dir (onnx) or engine file (tensorrt)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.bundle import BundleError
    from models.compile import compile_bundle
    from models.export import ExportMismatchError

    if args.backend == "tensorrt":
        from models.runtime.tensorrt_backend import tensorrt_unavailable_reason

        reason = tensorrt_unavailable_reason()
        if reason is not None:
            raise CommandError(f"cannot compile for tensorrt: {reason}")
    try:
        result = compile_bundle(args.bundle, args.output, args.backend, args.precision)
    except (BundleError, ExportMismatchError, ValueError, FileExistsError) as error:
        raise CommandError(str(error)) from error
    if args.json:
        print(result.model_dump_json())
    else:
        print(
            f"{result.backend} {result.precision} -> {result.output} "
            f"(max |diff| vs eager {result.max_abs_diff:.1e} <= {result.tolerance:.0e} at batch "
            f"{', '.join(map(str, result.checked_batches))})"
        )
    return 0
