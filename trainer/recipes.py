"""Named training recipes: everything `enecg train --recipe NAME` does, as one validated config.

- `ci`: tiny experts, a small synthetic set; trains, evaluates and writes a bundle in well under 2 minutes on a
  2-core CPU. Tests and the streaming worker's tests build it with `trainer.pipeline.build_ci_bundle`.
- `default`: the shipped bundle. Two ECG models that their authors trained on real patients and ship in pip
  packages (openecg codec_v6, pyvital's rhythm ResNet) beside our tiny patch and base resnet experts, all frozen
  and LoRA-adapted; fine-tuned on synthetic data only, so that every real record stays held out for evaluation
  (openecg's own training holds MIT-BIH DS1: records 101 and 208 are not held out for it).
- `synthetic`: the bundle shipped before 2026-12-05: base hubert + tiny patch + base resnet experts, all pretrained
  on synthetic ECG here; kept to compare against.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from models.config import EnECGConfig, ExpertSpec, InputSpec
from trainer.finetune import FinetuneSettings, Method
from trainer.losses import LossWeights
from trainer.pretrain import PretrainSettings
from trainer.rate_bands import RateBand


class Recipe(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    model: EnECGConfig
    synthetic_train: int = Field(ge=1, description="synthetic training windows")
    synthetic_val: int = Field(ge=1, description="synthetic validation windows (other patients)")
    synthetic_test: int = Field(ge=1, description="synthetic held-out test windows (other patients)")
    rate_bands: tuple[RateBand, ...] = Field(
        (), description="extra synthetic rhythms at chosen rate bands (train; an eighth as many for validation)"
    )
    real_fractions: dict[str, float] = Field(
        {"train": 0.7, "val": 0.15, "test": 0.15}, description="split of --data records by record/patient group"
    )
    pretrain: PretrainSettings
    finetune: FinetuneSettings
    compare: tuple[Method, ...] = Field((), description="baselines trained on the same data for the comparison")
    eval_records: tuple[str, ...] = Field(
        (),
        description="real recordings evaluated whole (never trained on), relative to the records directory "
        "the run is given (`enecg train --records-dir`; in a checkout, tests/fixtures)",
    )
    threads: int = Field(
        1, ge=1, description="torch intra-op threads (1: on a shared 2-core machine, OpenMP oversubscription costs 10x)"
    )


_CI_INPUT = InputSpec(leads=("II",), sample_rate_hz=250.0, window_s=5.0, hop_s=2.5, qrs_stride=5)
#: The shipped bundle reads a window every 2 s: with 4 s without QRS defining asystole, the first window end that
#: can see it then comes at most 6 s after the last beat (at 2.5 s, up to 6.5 s). Training never sees the hop
#: (windows start anywhere); it only sets how often the worker runs the model.
_DEFAULT_INPUT = InputSpec(leads=("II",), sample_rate_hz=250.0, window_s=5.0, hop_s=2.0, qrs_stride=5)

CI = Recipe(
    name="ci",
    description="tiny experts, small synthetic set: for tests and CI (< 2 min on 2 CPU cores)",
    model=EnECGConfig.of_size("tiny", input=_CI_INPUT),
    synthetic_train=512,
    synthetic_val=128,
    synthetic_test=192,
    pretrain=PretrainSettings(epochs=1, batch_size=64),
    finetune=FinetuneSettings(epochs=3, batch_size=32, lr=3e-3, patience=2),
    compare=(Method(kind="single", expert="resnet"), Method(kind="full", expert="resnet")),
    eval_records=tuple(f"cpsc2018/A000{i}" for i in range(1, 6)),
)

SYNTHETIC = Recipe(
    name="synthetic",
    description="the bundle shipped before 2026-12-05: base hubert + tiny patch + base resnet, synthetic-only training",
    model=EnECGConfig(
        input=_DEFAULT_INPUT,
        experts=(
            ExpertSpec(name="hubert", size="base"),
            ExpertSpec(name="patch", size="tiny"),
            ExpertSpec(name="resnet", size="base"),
        ),
        width=96,
        norm_floor_mv=0.25,
    ),
    synthetic_train=6144,
    synthetic_val=512,
    synthetic_test=1024,
    pretrain=PretrainSettings(epochs=2, batch_size=64),
    # QRS positives weighted 3 (not 8): a heavier weight buys recall with confident false beats on P waves,
    # which hide ventricular standstill (P waves without QRS) from the asystole rule
    finetune=FinetuneSettings(epochs=8, batch_size=32, lr=2e-3, patience=2, loss=LossWeights(qrs_pos_weight=3.0)),
    compare=(
        Method(kind="single", expert="hubert"),
        Method(kind="single", expert="patch"),
        Method(kind="single", expert="resnet"),
        Method(kind="full", expert="resnet"),
    ),
    eval_records=(
        "mitdb/100",
        "mitdb/101",
        *(f"cpsc2018/A000{i}" for i in range(1, 6)),
    ),
)

#: The shipped bundle: the two real-data experts that installable packages ship (frozen as shipped, LoRA on their
#: Linear/Conv1d layers like ours), openecg codec_v6 and pyvital's rhythm ResNet, beside our synthetic-trained
#: resnet and patch experts. Same data and training as `synthetic`, so the two compare directly. Our base hubert
#: is left out: openecg costs 9.5 CPU ms per window (batch 32, one thread; 60 % of a five-expert ensemble), and
#: hubert (3.6 ms) is a second transformer that has only seen synthetic ECG.
_SHIPPED_EXPERTS = (ExpertSpec(name="openecg", size="base"), ExpertSpec(name="pyvital", size="base"))
DEFAULT = SYNTHETIC.model_copy(
    update={
        "name": "default",
        "description": "the shipped bundle: real-data experts openecg codec_v6 and pyvital rhythm ResNet + our "
        "tiny patch and base resnet, synthetic fine-tuning",
        "model": SYNTHETIC.model.model_copy(update={"experts": (*SYNTHETIC.model.experts[1:], *_SHIPPED_EXPERTS)}),
        "compare": (
            *SYNTHETIC.compare[1:3],
            Method(kind="single", expert="openecg"),
            Method(kind="single", expert="pyvital"),
            SYNTHETIC.compare[3],
        ),
    }
)

RECIPES: dict[str, Recipe] = {r.name: r for r in (CI, DEFAULT, SYNTHETIC)}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
