"""The keys of unique jobs (jobpool/unique.py): a class is keyed by its attributes, a function
by its call with every argument bound to its parameter, however the call was spelt."""

from __future__ import annotations

from jobpool import Job, job
from jobpool.job import encode_job
from jobpool.unique import unique_options


class Order(Job, name="tests.unit.order"):
    unique = True

    def __init__(self, order: int, note: str):
        self.order, self.note = order, note


@job(unique=True, name="tests.unit.ship")
def ship(order: int, carrier: str = "post", *, signed: bool = False) -> None:
    """A unique function job."""


def _key(j: Job) -> str:
    options = unique_options(j, encode_job(j), None, None)
    assert options is not None
    return options[0]


def test_a_class_key_is_what_it_was_before_function_keys_were_normalised():
    """Keys held in Redis across an upgrade must stay the same for classes."""
    assert _key(Order(42, "gift")) == "tests.unit.order:afd5ac992a50b166986fe2ab07f910ec"
    swapped = Order.__new__(Order)
    swapped.note, swapped.order = "gift", 42
    assert _key(swapped) == _key(Order(42, "gift"))


def test_a_function_key_binds_the_call_to_the_signature():
    key = _key(ship.job(7))
    assert key.startswith("tests.unit.ship:")
    assert _key(ship.job(7, "post")) == key
    assert _key(ship.job(order=7, carrier="post", signed=False)) == key
    assert _key(ship.job(7, signed=True)) != key
    assert _key(ship.job(7, "courier")) != key
