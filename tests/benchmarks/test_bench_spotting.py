"""benchmarks.bench_spotting's command line: what it refuses before measuring anything."""

from __future__ import annotations

from benchmarks.bench_spotting import main


def test_docs_without_a_figure_is_refused(tmp_path, capsys):
    # the docs section links the figure it was made with; without --plot none is written
    docs = tmp_path / "b.md"
    assert main(["--suite", "cross", "--curve", "--docs", str(docs)]) == 2
    assert "--docs needs --plot" in capsys.readouterr().err
    assert not docs.exists()


def test_features_or_suite_must_be_given(capsys):
    assert main([]) == 2
    assert "give --features FOLDER or --suite cross" in capsys.readouterr().err
