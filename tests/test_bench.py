"""The benchmark runner (``python -m dwconv bench``): a short run saves its measurements, and the
saved file renders as the README's Markdown tables. (Speed itself is measured by the runner, never
asserted here.)"""

import json

from dwconv import bench

SHAPE = "mnv2-7x960-s1"


def test_quick_run_saves_every_contestant_and_renders_markdown(tmp_path, capsys):
    saved = tmp_path / "results.json"
    assert bench.main(["--quick", "--no-peers", "--shapes", SHAPE, "--json", str(saved)]) == 0
    printed = capsys.readouterr().out
    assert SHAPE in printed and "NHWC" in printed and "NCHW" in printed

    results = json.loads(saved.read_text())
    measured = {(m["section"], m["batch"], m["shape"], m["contestant"]) for m in results["measurements"]}
    assert measured == {("forward", 1, SHAPE, "dwconv NHWC"), ("forward", 1, SHAPE, "dwconv NCHW")}
    for m in results["measurements"]:
        assert m["reps_per_round"] >= 1 and len(m["round_ms"]) >= 1
        assert 0 < min(m["round_ms"]) <= m["median_ms"] <= max(m["round_ms"])

    assert bench.main(["--markdown", str(saved)]) == 0
    table = capsys.readouterr().out
    assert f"| {SHAPE} | NHWC |" in table and f"| {SHAPE} | NCHW |" in table
