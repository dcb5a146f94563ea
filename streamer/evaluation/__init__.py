"""Field-standard evaluation of the streaming engine: records through the worker's in-process pipeline,
scored by EC57 practice (beats), HR error, episodes, alarms and record-level labels, beside peer detectors."""

from streamer.evaluation.reference import EvalRecord, load_eval_record, synthetic_record
from streamer.evaluation.run import Evaluation, evaluate
from streamer.evaluation.stream import StreamResult, stream_record

__all__ = [
    "EvalRecord",
    "Evaluation",
    "StreamResult",
    "evaluate",
    "load_eval_record",
    "stream_record",
    "synthetic_record",
]
