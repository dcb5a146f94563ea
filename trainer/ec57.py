"""Beat-by-beat scoring by ANSI/AAMI EC57 practice (the rules of PhysioNet's `bxb`).

- A detected beat matches a reference beat when they are at most `window_s` (150 ms) apart; matching is
  one-to-one and greedy by distance (the closest pair anywhere is taken first), which is what bxb's
  "better than the next annotation" rule does in every case except rates above ~200 bpm.
- Beats before `learning_s` (5 minutes) are the algorithm's learning period and are not scored. A pair whose
  reference beat lies in the learning period is not scored either; a detection matched to such a beat is
  therefore not a false positive.
- Counts form the EC57 confusion matrix over AAMI classes N, S, V, F, Q plus O (no match): rows are the reference,
  columns the detection. From it: QRS Se/+P (any class matches any class), VEB Se/+P and FPR, SVEB Se/+P, with
  bxb's definitions (e.g. a reference F or Q beat called V is not a VEB false positive).
- Gross statistics pool the counts of all records; average statistics are the mean of the per-record figures
  over the records where that figure is defined (e.g. records without V beats do not enter the average VEB Se).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

#: AAMI beat classes, then O: "no matching beat" (a pseudo-class), in confusion-matrix order.
CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q", "O")
_I = {c: i for i, c in enumerate(CLASSES)}
N, S, V, F, Q, O = range(6)  # noqa: E741 (EC57 names the no-match class O)


class Stat(BaseModel):
    """Sensitivity and positive predictivity from true/false positive and false negative counts."""

    tp: int
    fn: int
    fp: int

    @property
    def se(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def ppv(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    def summary(self) -> dict[str, float | int | None]:
        return {"se": self.se, "ppv": self.ppv, "tp": self.tp, "fn": self.fn, "fp": self.fp}


class RecordScore(BaseModel):
    """One record's EC57 confusion matrix (rows reference N S V F Q O, columns detection n s v f q o)."""

    record_id: str
    confusion: list[list[int]] = Field(description="6 x 6 counts; [O][o] is always 0")
    classified: bool = Field(description="the detections carried AAMI classes (else VEB/SVEB are undefined)")
    scored_from_s: float
    scored_to_s: float | None

    def matrix(self) -> np.ndarray:
        return np.asarray(self.confusion, dtype=np.int64)

    @property
    def qrs(self) -> Stat:
        return qrs_stat(self.matrix())

    @property
    def veb(self) -> Stat | None:
        return veb_stat(self.matrix()) if self.classified else None

    @property
    def sveb(self) -> Stat | None:
        return sveb_stat(self.matrix()) if self.classified else None

    @property
    def veb_fpr(self) -> float | None:
        return veb_fpr(self.matrix()) if self.classified else None

    def summary(self) -> dict[str, object]:
        return {
            "record_id": self.record_id,
            "qrs": self.qrs.summary(),
            "veb": self.veb.summary() if self.veb else None,
            "sveb": self.sveb.summary() if self.sveb else None,
            "veb_fpr": self.veb_fpr,
        }


def qrs_stat(m: np.ndarray) -> Stat:
    return Stat(tp=int(m[:5, :5].sum()), fn=int(m[:5, O].sum()), fp=int(m[O, :5].sum()))


def veb_stat(m: np.ndarray) -> Stat:
    fn = int(m[V, [N, S, F, Q, O]].sum())
    return Stat(tp=int(m[V, V]), fn=fn, fp=int(m[N, V] + m[S, V] + m[O, V]))


def sveb_stat(m: np.ndarray) -> Stat:
    fn = int(m[S, [N, V, F, Q, O]].sum())
    return Stat(tp=int(m[S, S]), fn=fn, fp=int(m[N, S] + m[V, S] + m[F, S] + m[O, S]))


def veb_fpr(m: np.ndarray) -> float | None:
    """Share of non-V beats (and extra detections) called V: VFP / (VTN + VFP)."""
    fp = int(m[N, V] + m[S, V] + m[O, V])
    tn = int(m[np.ix_([N, S, F, Q, O], [N, S, F, Q])].sum())
    return fp / (tn + fp) if tn + fp else None


def match_beats(reference_s: np.ndarray, detected_s: np.ndarray, window_s: float = 0.150) -> np.ndarray:
    """One-to-one matches (k, 2) of [reference index, detection index], |dt| <= window_s, closest pairs first."""
    ref = np.asarray(reference_s, dtype=np.float64)
    det = np.asarray(detected_s, dtype=np.float64)
    tol = window_s + 1e-9  # times in seconds from sample counts: keep exactly 150 ms inside the window
    order = np.argsort(det, kind="stable")
    det_sorted = det[order]
    lo = np.searchsorted(det_sorted, ref - tol, side="left")
    hi = np.searchsorted(det_sorted, ref + tol, side="right")
    counts = hi - lo
    ref_idx = np.repeat(np.arange(len(ref)), counts)
    det_pos = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if counts.sum() else []
    det_idx = order[np.asarray(det_pos, dtype=np.int64)]
    dist = np.abs(ref[ref_idx] - det[det_idx])
    used_ref = np.zeros(len(ref), bool)
    used_det = np.zeros(len(det), bool)
    pairs = []
    for k in np.lexsort((det_idx, ref_idx, dist)):  # by distance, ties by position: deterministic
        r, d = ref_idx[k], det_idx[k]
        if not used_ref[r] and not used_det[d]:
            used_ref[r] = used_det[d] = True
            pairs.append((r, d))
    return np.asarray(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def _class_index(classes: Sequence[str] | np.ndarray, n: int, what: str) -> np.ndarray:
    classes = np.asarray(classes).astype(str)
    if len(classes) != n:
        raise ValueError(f"{what}: {len(classes)} classes for {n} beats")
    unknown = sorted(set(classes.tolist()) - set(CLASSES[:5]))
    if unknown:
        raise ValueError(f"{what}: unknown AAMI classes {unknown}; known: N, S, V, F, Q")
    return np.asarray([_I[c] for c in classes], dtype=np.int64)


def score_record(
    record_id: str,
    reference_s: np.ndarray,
    reference_classes: Sequence[str] | np.ndarray,
    detected_s: np.ndarray,
    detected_classes: Sequence[str] | np.ndarray | None = None,
    *,
    window_s: float = 0.150,
    learning_s: float = 300.0,
    end_s: float | None = None,
) -> RecordScore:
    """Score detections against reference beats (times in seconds, AAMI classes) by the rules above.

    Without `detected_classes` every detection counts as N and only the QRS statistics are defined.
    """
    ref = np.asarray(reference_s, dtype=np.float64)
    det = np.asarray(detected_s, dtype=np.float64)
    ref_cls = _class_index(reference_classes, len(ref), "reference")
    classified = detected_classes is not None
    det_cls = _class_index(detected_classes, len(det), "detected") if classified else np.zeros(len(det), np.int64)
    upper = np.inf if end_s is None else end_s
    ref_in = (ref >= learning_s) & (ref <= upper)
    det_in = (det >= learning_s) & (det <= upper)

    m = np.zeros((6, 6), dtype=np.int64)
    pairs = match_beats(ref, det, window_s)
    ref_used = np.zeros(len(ref), bool)
    det_used = np.zeros(len(det), bool)
    if len(pairs):
        ref_used[pairs[:, 0]] = det_used[pairs[:, 1]] = True
        scored = ref_in[pairs[:, 0]]
        np.add.at(m, (ref_cls[pairs[scored, 0]], det_cls[pairs[scored, 1]]), 1)
    np.add.at(m, (ref_cls[ref_in & ~ref_used], O), 1)
    np.add.at(m, (O, det_cls[det_in & ~det_used]), 1)
    return RecordScore(
        record_id=record_id, confusion=m.tolist(), classified=classified, scored_from_s=learning_s, scored_to_s=end_s
    )


class Summary(BaseModel):
    """Gross (pooled counts) and average (mean of per-record figures) statistics over records."""

    records: list[RecordScore]

    def _pooled(self, classified_only: bool) -> np.ndarray:
        rows = [r.matrix() for r in self.records if r.classified or not classified_only]
        return np.sum(rows, axis=0) if rows else np.zeros((6, 6), dtype=np.int64)

    def gross(self) -> dict[str, dict[str, float | int | None] | float | None]:
        out: dict[str, dict[str, float | int | None] | float | None] = {"qrs": qrs_stat(self._pooled(False)).summary()}
        if any(r.classified for r in self.records):
            m = self._pooled(True)
            out |= {"veb": veb_stat(m).summary(), "sveb": sveb_stat(m).summary(), "veb_fpr": veb_fpr(m)}
        return out

    def average(self) -> dict[str, float | None]:
        def mean(values: list[float | None]) -> float | None:
            defined = [v for v in values if v is not None]
            return float(np.mean(defined)) if defined else None

        out = {"qrs_se": mean([r.qrs.se for r in self.records]), "qrs_ppv": mean([r.qrs.ppv for r in self.records])}
        classified = [r for r in self.records if r.classified]
        if classified:
            out |= {
                "veb_se": mean([r.veb.se for r in classified if r.veb]),
                "veb_ppv": mean([r.veb.ppv for r in classified if r.veb]),
                "sveb_se": mean([r.sveb.se for r in classified if r.sveb]),
                "sveb_ppv": mean([r.sveb.ppv for r in classified if r.sveb]),
            }
        return out

    def report(self) -> dict[str, object]:
        return {
            "records": [r.summary() for r in self.records],
            "gross": self.gross(),
            "average": self.average(),
        }
