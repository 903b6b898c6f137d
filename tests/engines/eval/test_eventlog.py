"""The whole lines of an event log: a torn last line (no newline) skipped with one warning."""

from __future__ import annotations

import pytest

from engines.eval.eventlog import read_whole_lines, split_whole_lines


@pytest.mark.parametrize(
    "data, whole, torn",
    [
        (b"", [], b""),  # an empty log: nothing, nothing torn
        (b"a\nb\n", [b"a", b"b"], b""),  # every line whole
        (b'a\nb\n{"ty', [b"a", b"b"], b'{"ty'),  # a torn last line after whole ones
        (b'{"ty', [], b'{"ty'),  # only a torn line
        (b"a\n\nb\n", [b"a", b"", b"b"], b""),  # a blank line is a whole (empty) line
    ],
)
def test_split_whole_lines(data, whole, torn):
    assert split_whole_lines(data) == (whole, torn)


def test_a_torn_last_line_is_skipped_with_one_warning(tmp_path):
    path = tmp_path / "events.jsonl"
    # The torn line stops inside a two-byte UTF-8 character: it is never decoded.
    path.write_bytes('{"n": 1}\n{"n": "é"}\n'.encode() + b'{"n": "\xc3')
    warnings: list[str] = []
    assert read_whole_lines(path, warnings.append) == [(1, '{"n": 1}'), (2, '{"n": "é"}')]
    assert len(warnings) == 1 and f"{path}:3: skipped a torn last line (8 bytes" in warnings[0]


def test_a_log_of_whole_lines_gives_no_warning(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"n": 1}\n')
    warnings: list[str] = []
    assert read_whole_lines(path, warnings.append) == [(1, '{"n": 1}')]
    assert warnings == []
