"""The tasks the EnECG model serves and their label sets: the one place trainer, model and alarms agree on.

Shape legend used across the project: b batch, e experts, l leads, t time steps, k classes.
"""

from typing import Final

#: Multi-label rhythm head: the DESIGN.md conditions plus normal sinus and noise.
RHYTHM_LABELS: Final[tuple[str, ...]] = (
    "sinus",  # normal sinus rhythm (60-100 bpm)
    "sinus_bradycardia",
    "sinus_tachycardia",
    "atrial_fibrillation",
    "atrial_flutter",
    "svt",  # supraventricular tachycardia
    "av_block",
    "ventricular_tachycardia",
    "ventricular_fibrillation",  # fibrillation or flutter
    "asystole",
    "bigeminy",
    "trigeminy",
    "noise",  # the window cannot be read
)

#: Ectopy head: presence probability and count per window for each ectopic beat class.
ECTOPY_LABELS: Final[tuple[str, ...]] = ("pvc", "pac")

#: Signal-quality head (single-label softmax).
QUALITY_LABELS: Final[tuple[str, ...]] = ("good", "noisy", "unusable")

#: Task names, in the order of the gates (one gate per task).
TASKS: Final[tuple[str, ...]] = ("rhythm", "ectopy", "rr", "qrs", "quality")

#: Output tensors of the merged, exported model, in export order (ONNX output names).
#:   rhythm_prob   (b, len(RHYTHM_LABELS))  sigmoid
#:   ectopy_prob   (b, len(ECTOPY_LABELS))  sigmoid, "at least one such beat in the window"
#:   ectopy_count  (b, len(ECTOPY_LABELS))  >= 0, beats of that class in the window
#:   rr_s          (b,)                     mean RR interval in seconds (heart rate = 60 / rr_s)
#:   qrs_prob      (b, t_qrs)               per time step, t_qrs = samples // qrs_stride
#:   quality_prob  (b, len(QUALITY_LABELS)) softmax
#:   gate_weights  (b, len(TASKS), e)       each task's mixture weights over the experts
OUTPUT_NAMES: Final[tuple[str, ...]] = (
    "rhythm_prob",
    "ectopy_prob",
    "ectopy_count",
    "rr_s",
    "qrs_prob",
    "quality_prob",
    "gate_weights",
)

#: Rhythms that are lethal (high-priority, latching) alarms in DESIGN.md.
LETHAL_RHYTHMS: Final[frozenset[str]] = frozenset({"ventricular_tachycardia", "ventricular_fibrillation", "asystole"})
