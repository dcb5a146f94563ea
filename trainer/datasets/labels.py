"""Mappings from source label vocabularies (MIT-BIH symbols, SNOMED-CT, PTB-XL SCP) to our task labels.

Conditions we have no label for (bundle branch blocks, paced or nodal rhythm, ...) map to ``OTHER``: they are
kept in a record's ``conditions`` for reports, and the rhythm labels of such a stretch are masked (unknown),
because the underlying rhythm is not stated.
"""

from typing import Final

from models.tasks import RHYTHM_LABELS

OTHER: Final = "other"
AAMI_CLASSES: Final[tuple[str, ...]] = ("N", "S", "V", "F", "Q")
RHYTHM_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(RHYTHM_LABELS)}
SINUS_FAMILY: Final[tuple[str, ...]] = ("sinus", "sinus_bradycardia", "sinus_tachycardia")

#: MIT-BIH beat symbols -> AAMI EC57 class. Symbols not here ('+', '~', '|', '!', '[', ']', ...) are not beats.
BEAT_SYMBOL_TO_AAMI: Final[dict[str, str]] = {
    **dict.fromkeys(("N", "L", "R", "e", "j"), "N"),
    **dict.fromkeys(("A", "a", "J", "S"), "S"),
    **dict.fromkeys(("V", "E"), "V"),
    "F": "F",
    **dict.fromkeys(("/", "f", "Q"), "Q"),
}

#: MIT-BIH rhythm annotations (aux note of a '+') -> our label; "(N" is split by heart rate at load time.
#: "(B"/"(T" (ventricular bigeminy/trigeminy) say nothing about the underlying rhythm: the sinus family is masked.
MITDB_RHYTHM: Final[dict[str, str]] = {
    "(N": "sinus",
    "(SBR": "sinus_bradycardia",
    "(AB": "sinus",  # atrial bigeminy: sinus with PACs (the PACs are counted by the ectopy task)
    "(AFIB": "atrial_fibrillation",
    "(AFL": "atrial_flutter",
    "(SVTA": "svt",
    "(BII": "av_block",
    "(VT": "ventricular_tachycardia",
    "(VFL": "ventricular_fibrillation",
    "(B": "bigeminy",
    "(T": "trigeminy",
    "(IVR": OTHER,
    "(NOD": OTHER,
    "(P": OTHER,
    "(PREX": OTHER,
}

#: SNOMED-CT codes of PhysioNet/CinC 2020 headers -> our rhythm or ectopy label (or OTHER).
SNOMED: Final[dict[str, str]] = {
    "426783006": "sinus",
    "427393009": "sinus",  # sinus arrhythmia
    "426177001": "sinus_bradycardia",
    "427084000": "sinus_tachycardia",
    "164889003": "atrial_fibrillation",
    "164890007": "atrial_flutter",
    "426761007": "svt",
    "713422000": "svt",  # atrial tachycardia
    "270492004": "av_block",  # first degree
    "195042002": "av_block",  # second degree
    "27885002": "av_block",  # complete
    "164895002": "ventricular_tachycardia",
    "164896001": "ventricular_fibrillation",
    "11157007": "bigeminy",  # ventricular bigeminy
    "251180001": "trigeminy",  # ventricular trigeminy
    "164884008": "pvc",  # ventricular ectopics
    "17338001": "pvc",  # ventricular premature beats
    "427172004": "pvc",  # premature ventricular contractions
    "284470004": "pac",  # premature atrial contraction
    "63593006": "pac",  # supraventricular premature beats
    "59118001": OTHER,  # right bundle branch block
    "164909002": OTHER,  # left bundle branch block
}

#: PTB-XL SCP statements -> our rhythm or ectopy label.
PTBXL_SCP: Final[dict[str, str]] = {
    "SR": "sinus",
    "SARRH": "sinus",
    "SBRAD": "sinus_bradycardia",
    "STACH": "sinus_tachycardia",
    "AFIB": "atrial_fibrillation",
    "AFLT": "atrial_flutter",
    "SVTAC": "svt",
    "PSVT": "svt",
    "1AVB": "av_block",
    "2AVB": "av_block",
    "3AVB": "av_block",
    "BIGU": "bigeminy",
    "TRIGU": "trigeminy",
    "PVC": "pvc",
    "PAC": "pac",
    "CRBBB": OTHER,
    "CLBBB": OTHER,
    "PACE": OTHER,
}

#: Rhythm labels that describe the dominant rhythm: when a record-level diagnosis names one, every other rhythm
#: label of the record is known to be absent (except noise, which no diagnosis speaks to).
PRIMARY_RHYTHMS: Final[frozenset[str]] = frozenset(
    {
        *SINUS_FAMILY,
        "atrial_fibrillation",
        "atrial_flutter",
        "svt",
        "ventricular_tachycardia",
        "ventricular_fibrillation",
        "asystole",
    }
)


def sinus_label_for_rate(hr_bpm: float) -> str:
    """Sinus rhythm named by rate: < 60 bradycardia, > 100 tachycardia (the usual adult limits)."""
    if hr_bpm < 60:
        return "sinus_bradycardia"
    if hr_bpm > 100:
        return "sinus_tachycardia"
    return "sinus"
