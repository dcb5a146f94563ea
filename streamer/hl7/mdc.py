"""IEEE 11073-10101 (MDC) codes for what we send and read over HL7, and where each was checked.

Alert identities: MDC partition 3 (events); the HL7 code is the context-free form 3 * 65536 + term code.
Only codes found in a published table are used, namely DICOM PS3.16 CID 3038 "Pattern Event"
(asystole 3:3076, atrial fibrillation 3:3128) and CID 3039 "Device-related and Environment-related Event"
(lead disconnected 3:268, artifact 3:432), both reprinting ISO/IEEE 11073-10101. Our other conditions
(VT, VF, extreme brady/tachycardia, PVC patterns, HR limits, signal lost) have no code in those tables, so
they travel with a local code in the ``99ENECG`` coding system and their text, never an invented MDC code.

The ACM facet attributes (MDC_ATTR_EVENT_PHASE 68481 ... MDC_ATTR_ALERT_TYPE 68485), MDC_EVT_ALARM 196616,
MDC_ECG_HEART_RATE 147842 and MDC_DIM_BEAT_PER_MIN 264864 are those of the IHE PCD-04 examples and vendor
conformance statements (GE B40 PCD-01 guide, Mindray eGateway). Waveform leads follow the 11073 ECG lead table
(MDC_ECG_ELEC_POTL_I 131329, _II 131330 as in Mindray's WCM output, the others by the same lead numbering).
"""

from __future__ import annotations

from typing import NamedTuple


class Code(NamedTuple):
    code: str
    name: str
    system: str  # "MDC" or the local "99ENECG"

    def cwe(self, text: str = "") -> str:
        """HL7 CWE: code^name^system, with the text as the 9th component (original text) when given."""
        return f"{self.code}^{self.name}^{self.system}" + (f"^^^^^^{text}" if text else "")


LOCAL = "99ENECG"


def _evt(term: int, name: str) -> Code:
    return Code(str(3 * 65536 + term), name, "MDC")


#: condition -> alert identity. MDC where a published table has one, else a local code (see module doc).
CONDITION_CODES: dict[str, Code] = {
    "asystole": _evt(3076, "MDC_EVT_ECG_ASYSTOLE"),
    "atrial_fibrillation": _evt(3128, "MDC_EVT_ECG_ATR_FIB"),
    "leads_off": _evt(268, "MDC_EVT_LEAD_DISCONN"),
    "signal_noisy": _evt(432, "MDC_EVT_WAVE_ARTIF_ERR"),
    **{
        name: Code(name.upper(), name, LOCAL)
        for name in (
            "ventricular_fibrillation",
            "ventricular_tachycardia",
            "extreme_bradycardia",
            "extreme_tachycardia",
            "hr_out_of_limits",
            "pvc_run",
            "bigeminy",
            "trigeminy",
            "frequent_pvcs",
            "signal_lost",
        )
    },
}

EVT_ALARM = Code("196616", "MDC_EVT_ALARM", "MDC")
EVENT_PHASE = Code("68481", "MDC_ATTR_EVENT_PHASE", "MDC")
ALARM_STATE = Code("68482", "MDC_ATTR_ALARM_STATE", "MDC")
INACTIVATION_STATE = Code("68483", "MDC_ATTR_ALARM_INACTIVATION_STATE", "MDC")
ALARM_PRIORITY = Code("68484", "MDC_ATTR_ALARM_PRIORITY", "MDC")
ALERT_TYPE = Code("68485", "MDC_ATTR_ALERT_TYPE", "MDC")
HEART_RATE = Code("147842", "MDC_ECG_HEART_RATE", "MDC")
BEAT_PER_MIN = Code("264864", "MDC_DIM_BEAT_PER_MIN", "MDC")
EVIDENCE_WINDOW = Code("EVIDENCE_WINDOW", "Evidence window first and last sample time", LOCAL)

# WCM waveform attributes (names as Mindray's gateway emits them; the reader matches names, not numbers)
SAMPLE_RATE = Code("0", "MDC_ATTR_SAMP_RATE", "MDC")
RESOLUTION = Code("2327", "MDC_ATTR_NU_MSMT_RES", "MDC")
DIM_PER_SEC = Code("264608", "MDC_DIM_PER_SEC", "MDC")
DIM_MILLI_VOLT = Code("266418", "MDC_DIM_MILLI_VOLT", "MDC")
DIM_DIMLESS = Code("262656", "MDC_DIM_DIMLESS", "MDC")
LEAD_PREFIX = "MDC_ECG_ELEC_POTL_"
_LEAD_NUMBERS = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8, "III": 61, "aVR": 62,
                 "aVL": 63, "aVF": 64}  # fmt: skip
LEAD_CODES: dict[str, Code] = {
    lead: Code(str(2 * 65536 + 256 + n), LEAD_PREFIX + lead.upper(), "MDC") for lead, n in _LEAD_NUMBERS.items()
}
#: MIT-BIH's modified limb leads have no MDC term of their own: they go out as the standard lead (as the worker
#: reads them anyway).
MODIFIED_LEADS = {"MLI": "I", "MLII": "II", "MLIII": "III"}
LEAD_OF_NAME: dict[str, str] = {code.name: lead for lead, code in LEAD_CODES.items()}
