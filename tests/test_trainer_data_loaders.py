"""Real-data loaders on the fixture recordings (tests/fixtures, copied from shared/data)."""

import collections
import json
from pathlib import Path

import numpy as np
import pytest
import wfdb

from models.config import InputSpec
from models.tasks import ECTOPY_LABELS, RHYTHM_LABELS
from trainer.datasets import (
    iter_ptbxl,
    load_cinc_record,
    load_mitdb_record,
    load_plain_record,
    load_windows,
    record_windows,
)
from trainer.datasets.leads import LeadError, select_leads
from trainer.datasets.mitdb import aami_beats

FIX = Path(__file__).parent / "fixtures"
SPEC = InputSpec()
AF = RHYTHM_LABELS.index("atrial_fibrillation")
SINUS = RHYTHM_LABELS.index("sinus")


@pytest.fixture(scope="module")
def rec100():
    return load_mitdb_record(FIX / "mitdb" / "100", SPEC)


def test_mitdb100_has_2274_annotations_with_aami_mapping():
    ann = wfdb.rdann(str(FIX / "mitdb" / "100"), "atr")
    assert len(ann.sample) == 2274
    samples, classes = aami_beats(ann)
    # 2274 = 2273 beats + one '+' rhythm mark ("(N") that is not a beat.
    assert len(samples) == 2273
    assert collections.Counter(classes.tolist()) == {"N": 2239, "S": 33, "V": 1}
    assert [s for s in ann.symbol if s == "+"] == ["+"]


def test_mitdb101_beats_and_noise_marks():
    ann = wfdb.rdann(str(FIX / "mitdb" / "101"), "atr")
    assert len(ann.sample) == 1874
    _, classes = aami_beats(ann)
    assert collections.Counter(classes.tolist()) == {"N": 1860, "S": 3, "Q": 2}


def test_mitdb100_beats_sit_on_r_peaks_after_resampling(rec100):
    assert rec100.signal.shape == (1, round(650000 * 250 / 360))
    x = rec100.signal[0]
    r = 5  # +-20 ms at 250 Hz
    beats = rec100.beat_samples[(rec100.beat_samples > r) & (rec100.beat_samples < len(x) - r)]
    local = np.stack([x[beats + d] for d in range(-r, r + 1)])  # (2r + 1, k)
    offset = np.argmax(local, axis=0) - r
    assert np.mean(np.abs(offset) <= 2) > 0.99  # within 8 ms of the local maximum


def test_mitdb100_windows_labels(rec100):
    w = record_windows(rec100, SPEC)
    assert len(w) == (rec100.n_samples - 1250) // 250 + 1
    assert w.x.shape[1:] == (1, 1250) and w.x.dtype == np.float32
    # the '(N' mark is at 50 ms: the first window starts before it, so its rhythm is unknown
    assert not w.rhythm_mask[0].any()
    assert (w.rhythm[1:, SINUS] == 1).all() and w.rhythm_mask[1:, SINUS].all()
    assert not w.rhythm_mask[:, RHYTHM_LABELS.index("noise")].any()
    assert not w.quality_mask.any()
    pvc = ECTOPY_LABELS.index("pvc")
    assert w.ectopy_mask.all() and w.ectopy_count[:, pvc].sum() == 5  # one V beat seen by 5 overlapping windows
    assert np.all(w.rr_s[w.rr_mask] > 0.4) and np.all(w.rr_s[w.rr_mask] < 1.6)
    # one track peak of 1.0 per annotated beat
    lo = np.searchsorted(rec100.beat_samples, w.start_s * 250)
    hi = np.searchsorted(rec100.beat_samples, w.start_s * 250 + 1250)
    np.testing.assert_array_equal((w.qrs == 1.0).sum(axis=1), hi - lo)


@pytest.mark.parametrize("record", ["A0003", "A0004"])
def test_cpsc_af_records_map_to_atrial_fibrillation(record):
    rec = load_cinc_record(FIX / "cpsc2018" / record, SPEC)
    w = record_windows(rec, SPEC)
    assert len(w) >= 6
    assert (w.rhythm[:, AF] == 1).all() and w.rhythm_mask[:, AF].all()
    assert (w.rhythm[:, SINUS] == 0).all() and w.rhythm_mask[:, SINUS].all()
    assert not w.ectopy_mask.any() and not w.qrs_mask.any() and not w.rr_mask.any()


def test_cpsc_other_diagnoses():
    sinus = record_windows(load_cinc_record(FIX / "cpsc2018" / "A0002", SPEC), SPEC)
    assert (sinus.rhythm[:, SINUS] == 1).all() and (sinus.rhythm[:, AF] == 0).all()
    rbbb = load_cinc_record(FIX / "cpsc2018" / "A0001", SPEC)
    assert rbbb.conditions == ("other:59118001",) and not rbbb.rhythm_known.any()
    pvc = load_cinc_record(FIX / "cpsc2018" / "A0005", SPEC)
    assert pvc.conditions == ("pvc",) and not pvc.rhythm_known.any()


def test_limb_leads_derived_by_name_match_recorded():
    rec = wfdb.rdrecord(str(FIX / "cpsc2018" / "A0002"))
    recorded = select_leads(rec.p_signal.T, rec.sig_name, ("III", "aVF"))
    only_i_ii = select_leads(rec.p_signal.T[:2], rec.sig_name[:2], ("III", "aVF"))
    np.testing.assert_allclose(only_i_ii, recorded, atol=0.02)
    with pytest.raises(LeadError, match="V2"):
        select_leads(rec.p_signal.T[:2], rec.sig_name[:2], ("V2",))


def test_twelve_lead_spec_on_cpsc():
    spec = InputSpec(leads=("I", "II", "V1"), sample_rate_hz=500, window_s=10, hop_s=5, qrs_stride=10)
    w = load_windows(FIX / "cpsc2018" / "A0003.hea", spec)
    assert w.x.shape == (1, 3, 5000) and w.qrs.shape == (1, 500)


def test_mitdb208_excerpt_with_label_free_sidecar():
    rec = load_plain_record(FIX / "mitdb208-excerpt" / "ecg.npz", SPEC)
    assert rec.n_samples == round(108000 * 250 / 360)
    assert -5 < rec.signal.min() < 0 < rec.signal.max() < 5  # mV after (x - 1024) / 200
    w = record_windows(rec, SPEC)
    assert len(w) == 296
    for mask in (w.rhythm_mask, w.ectopy_mask, w.rr_mask, w.qrs_mask, w.quality_mask):
        assert not mask.any()


def test_csv_with_labelled_sidecar(tmp_path):
    rec = wfdb.rdrecord(str(FIX / "mitdb" / "101"), sampto=360 * 20)
    ann = wfdb.rdann(str(FIX / "mitdb" / "101"), "atr", sampto=360 * 20)
    np.savetxt(tmp_path / "bed7.csv", rec.p_signal, delimiter=",", header="MLII,V1", comments="")
    beats = [{"sample": int(s), "label": sym} for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym == "N"]
    (tmp_path / "bed7.json").write_text(
        json.dumps(
            {
                "sample_rate_hz": 360,
                "group_id": "patient-7",
                "beats": beats,
                "rhythm": [{"start_s": 0, "end_s": 20, "label": "sinus"}],
                "quality": [
                    {"start_s": 0, "end_s": 10, "label": "good"},
                    {"start_s": 10, "end_s": 20, "label": "noisy"},
                ],
            }
        )
    )
    w = load_windows(tmp_path, SPEC)
    assert len(w) == 16 and set(w.group_id) == {"patient-7"}
    assert w.quality_mask.all() and w.quality[0] == 0 and w.quality[-1] == 1
    assert w.rhythm_mask[:, SINUS].all() and w.rr_mask.all()


def test_ptbxl_database_layout(tmp_path):
    """A tiny ptbxl_database.csv naming 100 Hz WFDB records written from real CPSC signals."""
    rows = [
        (1, 11, "A0002", "{'NORM': 100.0, 'SR': 0.0}"),
        (2, 11, "A0003", "{'AFIB': 0.0}"),
        (3, 12, "A0001", "{'CRBBB': 100.0}"),
    ]
    lines = ["ecg_id,patient_id,scp_codes,strat_fold,filename_lr,filename_hr"]
    for ecg_id, patient, source, codes in rows:
        src = wfdb.rdrecord(str(FIX / "cpsc2018" / source))
        folder = tmp_path / "records100" / "00000"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{ecg_id:05d}_lr"
        wfdb.wrsamp(
            name,
            fs=100,
            units=["mV"] * 12,
            sig_name=src.sig_name,
            p_signal=src.p_signal[::5],
            fmt=["16"] * 12,
            write_dir=str(folder),
        )
        lines.append(f'{ecg_id},{patient},"{codes}",1,records100/00000/{name},records500/00000/{ecg_id:05d}_hr')
    (tmp_path / "ptbxl_database.csv").write_text("\n".join(lines) + "\n")
    recs = list(iter_ptbxl(tmp_path / "ptbxl_database.csv", SPEC))
    assert [r.group_id for r in recs] == ["ptbxl-patient-11", "ptbxl-patient-11", "ptbxl-patient-12"]
    assert recs[0].rhythm[SINUS].all() and recs[1].rhythm[AF].all() and not recs[2].rhythm_known.any()
    assert recs[0].n_samples == 2500  # 10 s at 250 Hz
    w = load_windows(tmp_path, SPEC)
    assert len(w) == 6 + 6 + 11  # 10 s, 10 s, 15 s records
