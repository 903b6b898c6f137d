"""The shared vocabularies of stream.contracts match the code that uses them."""

from __future__ import annotations

import re

from stream.contracts import DROP_CAUSES
from tests.helpers import REPO

# Every way a cause is counted: ring.reject("x"), ring.count_drop("x"), self._dropped["x"],
# and the cause a stop gives frames still unread.
COUNTED = re.compile(
    r'(?:reject|count_drop)\("([^"]+)"|_dropped\["([^"]+)"\]|discard_cause: str = "([^"]+)"'
)


def test_every_drop_cause_the_code_counts_is_declared():
    counted = set()
    for path in (REPO / "stream").rglob("*.py"):
        for match in COUNTED.finditer(path.read_text()):
            counted.add(next(group for group in match.groups() if group))
    assert counted == set(DROP_CAUSES)  # none undeclared, none declared that nothing counts
