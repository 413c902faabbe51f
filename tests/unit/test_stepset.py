"""completed_steps as stored (chalicelib/domain/stepset.py): a bitmap string, exact both ways."""

from __future__ import annotations

import binascii
import random

import pytest

from chalicelib.domain import stepset
from chalicelib.domain.vocabulary import MAX_STEPS


def test_every_set_of_steps_comes_back_as_it_went_in() -> None:
    rng = random.Random(7)
    cases = [[], [1], [8], [9], [MAX_STEPS], list(range(1, MAX_STEPS + 1))]
    cases += [sorted(rng.sample(range(1, MAX_STEPS + 1), rng.randint(1, MAX_STEPS))) for _ in range(200)]
    for steps in cases:
        stored = stepset.encode(steps)
        assert stored.startswith("bits:") and stepset.decode(stored) == steps


def test_the_stored_form_is_bounded_by_the_last_step_not_by_how_many() -> None:
    assert len(stepset.encode(range(1, MAX_STEPS + 1))) == len(stepset.encode([MAX_STEPS])) <= 173
    assert stepset.encode([]) == "bits:" and stepset.encode([1, 2, 3]) == "bits:Bw=="
    assert stepset.encode([3, 1, 2, 2]) == stepset.encode([1, 2, 3])  # a set: order and repeats do not matter


def test_lists_written_before_the_bitmap_are_read_as_they_are() -> None:
    from decimal import Decimal

    assert stepset.decode([1, 2, 5]) == [1, 2, 5]
    assert stepset.decode([Decimal(1), Decimal(3)]) == [1, 3]  # as boto3 reads numbers
    assert stepset.decode(None) is None  # anything else: for the model to refuse


def test_a_damaged_bitmap_is_refused() -> None:
    with pytest.raises(binascii.Error):
        stepset.decode("bits:not base64!")
