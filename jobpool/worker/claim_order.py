"""In which order a worker serving several queues looks at them for its next claim.

Strict priority (the default): always the first queue first, a lower one only when those above
are empty. With weights (`weights = [6, 3, 1]`, as Sidekiq's weighted queues): the queue looked
at first is drawn at random in proportion to its weight, then the next among the rest, and so
on, so a busy high-weight queue cannot starve a low one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


class ClaimOrder:
    def __init__(self, queues: Sequence[str], weights: Sequence[int] = ()):
        if weights and len(weights) != len(queues):
            raise ValueError(f"one weight per queue: {len(queues)} queues, {len(weights)} weights")
        self.queues = list(queues)
        self.weights = list(weights)
        self._rng = random.Random()

    def next(self) -> list[str]:
        """The queues in the order to try them now."""
        if not self.weights:
            return self.queues
        queues, weights, order = list(self.queues), list(self.weights), []
        while queues:
            i = self._rng.choices(range(len(queues)), weights)[0]
            order.append(queues.pop(i))
            weights.pop(i)
        return order
