"""Beat morphology: McSharry-style Gaussian waves in a 3-D heart vector, projected onto the leads.

Each wave (P, Q, R, S, T, ...) is a Gaussian in time with a dipole (x left, y inferior, z anterior, in mV).
Summing the dipoles gives the heart vector (3, n); a lead is its projection on that lead's axis, so the limb
leads obey Einthoven's and Goldberger's equations exactly (III = II - I, aVF = (II + III) / 2, ...) and every
lead shows the same beats.
"""

from dataclasses import dataclass

import numpy as np

_S = np.sqrt(3) / 2
_PRECORDIAL_DEG = {"V1": 115, "V2": 95, "V3": 75, "V4": 55, "V5": 30, "V6": 0}

#: Unit lead axes in heart-vector coordinates (precordial leads scaled 1.3: they sit closer to the heart).
LEAD_AXES: dict[str, np.ndarray] = {
    "I": np.array([1.0, 0.0, 0.0]),
    "II": np.array([0.5, _S, 0.0]),
    "III": np.array([-0.5, _S, 0.0]),
    "aVR": np.array([-0.75, -_S / 2, 0.0]),
    "aVL": np.array([0.75, -_S / 2, 0.0]),
    "aVF": np.array([0.0, _S, 0.0]),
    **{
        name: 1.3 * np.array([np.cos(np.radians(deg)), 0.15, np.sin(np.radians(deg))])
        for name, deg in _PRECORDIAL_DEG.items()
    },
}


def lead_matrix(leads: tuple[str, ...]) -> np.ndarray:
    """(l, 3) projection from the heart vector to ``leads``."""
    unknown = [name for name in leads if name not in LEAD_AXES]
    if unknown:
        raise ValueError(f"unknown leads {unknown}; known: {list(LEAD_AXES)}")
    return np.stack([LEAD_AXES[name] for name in leads])


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation of up to ``max_deg`` about a random axis (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.radians(rng.uniform(-max_deg, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


@dataclass
class Patient:
    """One subject's morphology. Dipoles are (3,) mV; times in s relative to the R peak."""

    p: np.ndarray
    p_ectopic: np.ndarray
    qrs: np.ndarray  # (4 waves Q, R, S, R', 3); R' is zero without a bundle branch block
    qrs_times: np.ndarray  # (4,)
    qrs_sigmas: np.ndarray  # (4,)
    t: np.ndarray
    pr_s: float
    pvc_foci: np.ndarray  # (k, 3 waves, 3)
    pvc_sigma: np.ndarray  # (k,)
    af_dir: np.ndarray
    flutter_dir: np.ndarray
    vf_dir: np.ndarray


#: Share of patients with a bundle branch block (wide QRS with a terminal R'): common in monitored adults, and a
#: wide supraventricular beat must not read as a PVC, VT or atrial fibrillation.
BUNDLE_BRANCH_BLOCK_SHARE = 0.15


def random_patient(rng: np.random.Generator) -> Patient:
    """A plausible adult: electrical axis, amplitudes, QRS width and PR vary between patients; some have a
    right bundle branch block (QRS 110-150 ms with a terminal rightward-anterior R')."""
    rot = _rotation(rng, 25)
    qrs_scale = rng.uniform(0.6, 1.5)
    width = rng.uniform(0.85, 1.2)
    qrs = np.array([[-0.12, -0.05, 0.25], [0.75, 0.9, -0.2], [-0.2, -0.25, -0.4], [0.0, 0.0, 0.0]]) * qrs_scale
    times, sigmas = np.array([-0.026, 0.0, 0.027, 0.06]), np.array([0.008, 0.0095, 0.009, 0.012])
    if rng.random() < BUNDLE_BRANCH_BLOCK_SHARE:
        width *= rng.uniform(1.3, 1.6)
        qrs[3] = np.array([-0.35, -0.1, 0.5]) * qrs_scale * rng.uniform(0.6, 1.2)
    foci = []
    for _ in range(2):
        r = rng.normal([0.2, 1.2, 0.6], 0.7)
        r *= rng.uniform(1.4, 2.4) / np.linalg.norm(r)
        foci.append([r, -0.3 * r, -0.3 * r])  # R', a smaller S' (R' is the main deflection in every lead), T'
    return Patient(
        p=rot @ np.array([0.06, 0.12, 0.03]) * rng.uniform(0.7, 1.3),
        p_ectopic=rot @ np.array([0.05, -0.09, 0.05]) * rng.uniform(0.7, 1.3),
        qrs=qrs @ rot.T,
        qrs_times=times * width,
        qrs_sigmas=sigmas * width,
        t=rot @ np.array([0.18, 0.28, 0.05]) * rng.uniform(0.6, 1.4),
        pr_s=rng.uniform(0.13, 0.19),
        pvc_foci=np.array(foci),
        pvc_sigma=rng.uniform(0.026, 0.036, size=2),
        af_dir=np.array([0.2, 0.7, 0.9]),
        flutter_dir=np.array([0.1, -0.95, 0.3]),
        vf_dir=rng.normal([0.3, 0.7, 0.4], 0.3),
    )


def render_waves(centers: np.ndarray, sigmas: np.ndarray, dipoles: np.ndarray, n: int, fs: float) -> np.ndarray:
    """Sum of Gaussians: centers/sigmas (w,) in s, dipoles (w, 3) -> heart vector (3, n). Each Gaussian is
    evaluated on +-4 sigma only, all at once (no per-wave Python loop)."""
    out = np.zeros((3, n))
    if len(centers) == 0:
        return out
    half = np.ceil(4 * sigmas * fs).astype(np.int64)  # (w,)
    first = np.rint(centers * fs).astype(np.int64) - half
    lengths = 2 * half + 1
    wave = np.repeat(np.arange(len(centers)), lengths)  # (m,)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    idx = first[wave] + offsets
    keep = (idx >= 0) & (idx < n)
    idx, wave = idx[keep], wave[keep]
    g = np.exp(-0.5 * ((idx / fs - centers[wave]) / sigmas[wave]) ** 2)
    for k in range(3):
        out[k] = np.bincount(idx, weights=g * dipoles[wave, k], minlength=n)
    return out


@dataclass
class Waves:
    """Waves collected before one ``render_waves`` call."""

    centers: list[np.ndarray]
    sigmas: list[np.ndarray]
    dipoles: list[np.ndarray]

    @classmethod
    def empty(cls) -> "Waves":
        return cls([], [], [])

    def add(self, centers: np.ndarray, sigmas: np.ndarray, dipoles: np.ndarray) -> None:
        centers = np.atleast_1d(centers)
        self.centers.append(centers)
        self.sigmas.append(np.broadcast_to(sigmas, centers.shape))
        self.dipoles.append(np.broadcast_to(dipoles, (*centers.shape, 3)))

    def render(self, n: int, fs: float) -> np.ndarray:
        if not self.centers:
            return np.zeros((3, n))
        return render_waves(
            np.concatenate(self.centers), np.concatenate(self.sigmas), np.concatenate(self.dipoles), n, fs
        )


def qt_t_peak(rr_s: np.ndarray) -> np.ndarray:
    """R-to-T-peak delay shortening with heart rate (about Bazett-like over 40-200 bpm)."""
    return np.clip(0.16 + 0.12 * rr_s, 0.19, 0.33)


def add_beats(
    waves: Waves,
    patient: Patient,
    r_times: np.ndarray,
    ventricular: np.ndarray,
    focus: np.ndarray,
    rr_prev: np.ndarray,
    rng: np.random.Generator,
    resp_hz: float,
) -> None:
    """QRS-T waves for beats at ``r_times`` (s). Supraventricular beats use the patient's narrow Q/R/S; ventricular
    beats a wide R'/S' from their focus with a discordant T. Each beat varies a little in amplitude (noise plus
    respiratory modulation of the electrical axis)."""
    k = len(r_times)
    if k == 0:
        return
    amp = rng.normal(1.0, 0.03, k) * (1 + 0.07 * np.sin(2 * np.pi * resp_hz * r_times))  # (k,)
    t_peak = qt_t_peak(rr_prev)
    sv = ~ventricular
    if sv.any():
        rt, a = r_times[sv], amp[sv]
        for j in range(len(patient.qrs_times)):
            waves.add(rt + patient.qrs_times[j], patient.qrs_sigmas[j], a[:, None] * patient.qrs[j])
        tp = t_peak[sv]
        waves.add(rt + tp - 0.03, 0.055, a[:, None] * 0.6 * patient.t)
        waves.add(rt + tp + 0.025, 0.035, a[:, None] * 0.55 * patient.t)
    if ventricular.any():
        rt, a, f = r_times[ventricular], amp[ventricular], focus[ventricular]
        sig = patient.pvc_sigma[f]
        dip = patient.pvc_foci[f]  # (kv, 3 waves, 3)
        waves.add(rt, sig, a[:, None] * dip[:, 0])
        waves.add(rt + 1.9 * sig, sig, a[:, None] * dip[:, 1])
        waves.add(rt + t_peak[ventricular] + 0.06, 0.075, a[:, None] * dip[:, 2])


def add_p_waves(waves: Waves, patient: Patient, p_times: np.ndarray, ectopic: np.ndarray) -> None:
    """P waves (peaks at ``p_times``), sinus or ectopic atrial axis."""
    if len(p_times) == 0:
        return
    dip = np.where(ectopic[:, None], patient.p_ectopic[None], patient.p[None])
    waves.add(p_times, 0.022, dip)
