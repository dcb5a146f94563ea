"""Record/patient-grouped splits: deterministic and never leaking a group across splits."""

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.config import InputSpec
from trainer.datasets import load_windows, split_by_group

FIX = Path(__file__).parent / "fixtures"


def test_record_split_never_leaks_between_train_and_test():
    w = load_windows([FIX / "mitdb", FIX / "cpsc2018"], InputSpec(hop_s=5.0))
    assert set(w.record_id) == {"100", "101", "A0001", "A0002", "A0003", "A0004", "A0005"}
    split = split_by_group(w.record_id, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    assert sum(len(v) for v in split.values()) == len(w)
    assert all(len(v) for v in split.values())
    seen = [set(w.record_id[idx]) for idx in split.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    again = split_by_group(w.record_id, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    assert all(np.array_equal(split[k], again[k]) for k in split)


@settings(max_examples=50, deadline=None)
@given(
    groups=st.lists(st.sampled_from([f"g{i}" for i in range(12)]), min_size=1, max_size=200),
    seed=st.integers(0, 2**31),
)
def test_split_properties(groups, seed):
    split = split_by_group(groups, {"train": 0.8, "test": 0.2}, seed)
    train, test = (set(np.asarray(groups)[split[k]]) for k in ("train", "test"))
    assert not train & test
    assert sorted(np.concatenate(list(split.values()))) == list(range(len(groups)))
    if len(set(groups)) >= 2:
        assert train and test
