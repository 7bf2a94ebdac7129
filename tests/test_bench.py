"""The benchmark runner (``python -m dwconv bench``): a short run saves its measurements, and the
saved file renders as the README's Markdown tables. (Speed itself is measured by the runner, never
asserted here: only that every figure is there, positive, and of a sane order of magnitude.)"""

import importlib.util
import io
import json
import sys

import numpy as np
import pytest

from dwconv import _kernels, bench

SHAPE = "mnv2-7x960-s1"  # 7x7 pixels, 960 channels, 3x3 filter, stride 1, padding 1
THREADS = 2  # the runner's default


def shape_flops(batch, kind):
    """2 flops per multiply-add of SHAPE, counted here from its dimensions; backward twice."""
    forward = 2 * batch * 7 * 7 * 960 * 3 * 3
    return forward if kind == "forward" else 2 * forward


def shape_bytes(batch, kind):
    """x read and y written (as large: stride 1, same padding); backward x, dy read and dx written."""
    plane = 4 * batch * 7 * 7 * 960
    return 2 * plane if kind == "forward" else 3 * plane


def check_limits(limits, threads):
    assert limits["isa"] == _kernels.active_isa()
    assert set(limits["by_threads"]) == {"1", str(threads)}
    assert limits["other_cpus_meanwhile"] is None or limits["other_cpus_meanwhile"] >= 0
    for n, figures in limits["by_threads"].items():
        assert 1 < figures["fma_peak_gflops"] / int(n) < 1000  # per core
        assert 0.5 < figures["dram_copy_gb_per_s"] < 1000
        assert 0.5 < figures["l3_copy_gb_per_s"] < 1000


def check_efficiency(row, limits):
    """GFLOP/s and both percentages recomputed from the row's time and the run's limits."""
    seconds = row["dwconv_ms"] / 1e3
    figures = limits["by_threads"][str(THREADS)]
    assert row["gflop_per_s"] == pytest.approx(shape_flops(row["batch"], row["section"]) / seconds / 1e9)
    assert row["pct_of_peak"] == pytest.approx(100 * row["gflop_per_s"] / figures["fma_peak_gflops"])
    assert row["gb_per_s"] == pytest.approx(shape_bytes(row["batch"], row["section"]) / seconds / 1e9)
    # The L3 copy's figure is the reference for rows moving at most as much as that copy did.
    reference = "L3" if shape_bytes(row["batch"], row["section"]) <= 2 * limits["l3_copy_bytes"] else "DRAM"
    assert row["copy_bw_reference"] == reference
    copy_gb_per_s = figures[f"{reference.lower()}_copy_gb_per_s"]
    assert row["pct_of_copy_bw"] == pytest.approx(100 * row["gb_per_s"] / copy_gb_per_s)


def test_quick_run_saves_every_contestant_and_renders_markdown(tmp_path, capsys):
    saved = tmp_path / "results.json"
    assert bench.main(["--quick", "--no-peers", "--shapes", SHAPE, "--json", str(saved)]) == 0
    printed = capsys.readouterr().out
    assert SHAPE in printed and "NHWC" in printed and "NCHW" in printed
    assert "FMA peak" in printed and "GFLOP/s" in printed and "% copy bw" in printed

    results = json.loads(saved.read_text())
    measured = {(m["section"], m["batch"], m["shape"], m["contestant"]) for m in results["measurements"]}
    assert measured == {("forward", 1, SHAPE, "dwconv NHWC"), ("forward", 1, SHAPE, "dwconv NCHW")}
    for m in results["measurements"]:
        assert m["reps_per_round"] >= 1 and len(m["round_ms"]) >= 1
        assert 0 < min(m["round_ms"]) <= m["median_ms"] <= max(m["round_ms"])
    limits = results["machine"]["limits"]
    check_limits(limits, THREADS)
    for row in results["comparisons"]:
        check_efficiency(row, limits)
        assert row["dx_ms"] is None and row["dw_ms"] is None

    assert bench.main(["--markdown", str(saved)]) == 0
    table = capsys.readouterr().out
    assert "FMA peak" in table
    columns = "| shape | layout | dwconv | best peer | peer ms | ratio | GFLOP/s | % peak | GB/s | % copy bw |"
    assert columns in table
    assert f"| {SHAPE} | NHWC |" in table and f"| {SHAPE} | NCHW |" in table


def test_markdown_renders_a_file_saved_before_the_efficiency_columns(tmp_path, capsys):
    saved = tmp_path / "results.json"
    argv = ["--quick", "--no-peers", "--shapes", SHAPE, "--layout", "NHWC", "--json", str(saved)]
    assert bench.main(argv) == 0
    results = json.loads(saved.read_text())
    del results["machine"]["limits"]
    for row in results["comparisons"]:
        for key in ("gflop_per_s", "pct_of_peak", "pct_of_copy_bw", "copy_bw_reference", "dx_ms", "dw_ms"):
            del row[key]
    saved.write_text(json.dumps(results))
    capsys.readouterr()

    assert bench.main(["--markdown", str(saved)]) == 0
    table = capsys.readouterr().out
    assert "| shape | layout | dwconv | best peer | peer ms | ratio | GB/s |" in table
    assert f"| {SHAPE} | NHWC |" in table and "FMA peak" not in table


def test_backward_run_times_each_gradient_alone(tmp_path, capsys):
    saved = tmp_path / "results.json"
    argv = ["--quick", "--no-peers", "--backward", "--shapes", SHAPE, "--batch", "1", "--json", str(saved)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "dx ms" in printed and "dW ms" in printed

    results = json.loads(saved.read_text())
    backward = [row for row in results["comparisons"] if row["section"] == "backward"]
    assert {row["layout"] for row in backward} == {"NHWC", "NCHW"}
    for row in backward:
        check_efficiency(row, results["machine"]["limits"])
        assert row["dx_ms"] > 0 and row["dw_ms"] > 0 and row["backward_over_forward"] > 0
    measured = {m["contestant"] for m in results["measurements"] if m["section"] == "backward"}
    assert measured == {f"dwconv {what}{layout}" for what in ("", "fwd ", "dx ", "dW ")
                        for layout in ("NHWC", "NCHW")}

    assert bench.main(["--markdown", str(saved)]) == 0
    table = capsys.readouterr().out
    assert "| shape | layout | dwconv | dx | dW | best peer | peer ms | ratio | bwd/fwd | GFLOP/s |" in table


def test_machine_limits_measured_briefly_are_sane():
    for isa in _kernels.supported_isas():
        if isa in _kernels.PEAK_ISAS:
            assert 1 < _kernels.fma_peak_gflops(1, 0.02, isa) < 1000
    assert 1 < _kernels.fma_peak_gflops(2, 0.02) < 2000
    with pytest.raises(ValueError, match="no FMA peak or copy loop"):
        _kernels.fma_peak_gflops(1, 0.02, "no-such-level")
    for n_threads in (1, 2):
        assert 0.5 < _kernels.copy_bandwidth(4 << 20, n_threads) < 1000
    # A size that splits into uneven parts, with a tail below one vector, is copied (and timed) too.
    assert _kernels.copy_bandwidth(129, 2, 1) > 0
    with pytest.raises(ValueError):
        _kernels.copy_bandwidth(0, 1)


def test_one_thread_limits_are_the_per_core_figures(monkeypatch):
    monkeypatch.setattr(bench, "DRAM_COPY_BYTES", 4 << 20)
    limits = bench.machine_limits(1, 0.02)
    check_limits(limits, 1)
    assert limits["dram_copy_bytes"] == 4 << 20


def test_round_robin_varies_who_goes_before_whom():
    """Every round times each contestant once, in an order of its own: across the rounds each one
    follows several others (what one batch leaves behind for the next, such as a peer's threads
    still busy, does not fall on the same contestant in most rounds)."""
    calls = []
    contestants = [bench.Contestant(label, lambda label=label: calls.append(label), None, spin_down=0)
                   for label in "abcd"]
    samples, reps = bench._time_round_robin(contestants, rounds=7, batch_seconds=1e-4)
    assert {label: len(times) for label, times in samples.items()} == {label: 7 for label in "abcd"}
    timed = calls[len(calls) - 7 * sum(reps.values()):]  # after the repetition estimates
    batches, i = [], 0
    while i < len(timed):  # (one batch: reps[label] calls of the same contestant)
        batches.append(timed[i])
        assert timed[i:i + reps[timed[i]]] == [timed[i]] * reps[timed[i]]
        i += reps[timed[i]]
    rounds = [batches[4 * r:4 * r + 4] for r in range(7)]
    assert all(sorted(order) == list("abcd") for order in rounds)
    before = {label: {order[order.index(label) - 1] for order in rounds if order[0] != label} for label in "abcd"}
    assert all(len(others) >= 2 for others in before.values()), before


def test_round_robin_reports_every_step_in_order():
    """One step per repetition estimate, then one per timed batch: the progress shown counts them."""
    reported = []
    contestants = [bench.Contestant(label, lambda: None, None, spin_down=0) for label in "ab"]
    bench._time_round_robin(contestants, rounds=3, batch_seconds=1e-4,
                            report_progress=lambda done, total: reported.append((done, total)))
    assert reported == [(done, 8) for done in range(1, 9)]


def test_round_robin_waits_for_spinning_threads_before_estimating(monkeypatch):
    """The cross-check has just run every contestant: the repetition estimates start only after
    the longest spin-down, or the first one meets the others' spinning threads."""
    events = []
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: events.append(("sleep", seconds)))
    contestants = [bench.Contestant(label, lambda label=label: events.append(("run", label)), None,
                                    spin_down=spin_down)
                   for label, spin_down in (("a", 0.02), ("b", 0.15), ("c", 0.02))]
    bench._time_round_robin(contestants, rounds=1, batch_seconds=1e-4)
    assert events[0] == ("sleep", 0.15)
    assert events[1] == ("run", "a")


def test_round_robin_times_slow_contestants_in_fewer_rounds(monkeypatch):
    """Calls that would outlast CONTESTANT_SECONDS over the rounds are timed in fewer rounds, one at
    least; a call whose cross-check took SLOW_CALL_SECONDS or more is not run again to estimate, and
    one longer than CONTESTANT_SECONDS not at all: its cross-check call is its sample."""
    clock, calls = FakeClock(), []
    monkeypatch.setattr(bench.time, "perf_counter", clock)
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: None)

    def contestant(label, seconds):
        def run():
            calls.append(label)
            clock.now += seconds
        return bench.Contestant(label, run, lambda result: (np.zeros(1),), spin_down=0)

    costs = {"fast": 0.001, "half": 0.5, "slow": 2.0, "slower": 10.0}
    contestants = [contestant(label, seconds) for label, seconds in costs.items()]
    first_calls = bench._cross_check(contestants, "case")
    assert first_calls == pytest.approx(costs)
    calls.clear()
    samples, reps = bench._time_round_robin(contestants, rounds=7, batch_seconds=0.03, first_calls=first_calls)
    assert {label: len(times) for label, times in samples.items()} == {"fast": 7, "half": 6, "slow": 1, "slower": 1}
    assert reps == {"fast": 30, "half": 1, "slow": 1, "slower": 1}
    assert calls.count("half") == 1 + 6  # its warm-up, the estimate, then its rounds
    assert calls.count("slow") == 1 and "slower" not in calls
    assert samples["slower"] == pytest.approx([10.0])


def test_fewer_rounds_are_reported_with_the_time_of_a_call(capsys):
    bench._print_fewer_rounds({"dwconv NHWC": [0.2] * 7, "torch": [3.5]}, 7)
    assert capsys.readouterr().out == ("  ^ fewer rounds, to time each contestant for at most ~3 s (a longer call: "
                                       "its cross-check call alone): torch 1 (3500 ms a call)\n")
    bench._print_fewer_rounds({"dwconv NHWC": [0.2] * 7}, 7)
    assert capsys.readouterr().out == ""


def reference_peer(problem_batch):
    """A peer computing the gradients with the test reference, so that the bench's per-gradient
    plumbing (contestants, cross-check, tables) runs without a framework installed."""
    from reference import conv2d_backprop_filter, conv2d_backprop_input

    def gradients(problem):
        s = problem.shape
        pad = bench._explicit_padding(s)
        strides = (s.stride, s.stride)
        return (conv2d_backprop_input(problem.x.shape, problem.w, problem.dy, strides, pad, "NHWC", (1, 1)),
                conv2d_backprop_filter(problem.x, problem.w.shape, problem.dy, strides, pad, "NHWC", (1, 1)))

    def backward(problem):
        dx, dw = gradients(problem)
        return bench.Contestant("ref", lambda: (dx, dw), lambda grads: grads)

    def gradient(problem, which):
        array = gradients(problem)[bench.GRADIENTS.index(which)]
        return bench.Contestant(f"ref {which}", lambda: array, lambda a: (a,), part=bench.GRADIENTS.index(which))

    return bench.Peer("ref", "NHWC", "reference", "0", None, backward, gradient)


def test_backward_compares_each_gradient_alone_with_the_peers(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "PEER_PACKAGES", {
        "reference": bench.PeerPackage(lambda threads: [reference_peer(threads)], ("ref",), ("forward", "backward"),
                                       ("reference",)),
    })
    saved = tmp_path / "results.json"
    argv = ["--quick", "--peers", "--backward", "--shapes", SHAPE, "--batch", "1", "--json", str(saved)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "each gradient alone" in printed and "disagrees" not in printed
    # The chart goes beside the results, named as they are (where matplotlib is there to draw it).
    chart = f" and {tmp_path / 'results.png'}" if importlib.util.find_spec("matplotlib") else "; chart skipped"
    assert printed.splitlines()[-1].startswith(f"results written to {saved}{chart}")

    results = json.loads(saved.read_text())
    measured = {m["contestant"] for m in results["measurements"] if m["section"] == "backward"}
    assert {"ref", "ref dx", "ref dW"} <= measured
    medians = {m["contestant"]: m["median_ms"] for m in results["measurements"] if m["section"] == "backward"}
    for row in (r for r in results["comparisons"] if r["section"] == "backward"):
        for which, ms in (("dx", row["dx_ms"]), ("dW", row["dw_ms"])):
            alone = row["alone"][which]
            assert alone["best_peer"] == "ref"
            assert alone["peers_ms"]["ref"] == pytest.approx(medians[f"ref {which}"])
            assert alone["ratio"] == pytest.approx(medians[f"ref {which}"] / ms)

    assert bench.main(["--markdown", str(saved)]) == 0
    table = capsys.readouterr().out
    assert "each gradient alone" in table
    assert "| shape | layout | dx | best peer | peer ms | ratio | dW | best peer | peer ms | ratio |" in table


def test_a_gradient_that_disagrees_is_reported(capsys):
    problem = bench._make_problem(bench.SUITE[5], 1, "backward", np.random.default_rng(0))
    good = reference_peer(1)
    contestants = [good.backward(problem), good.gradient(problem, "dW")]
    wrong = contestants[1].run() * 1.5
    contestants.append(bench.Contestant("bad dW", lambda: wrong, lambda a: (a,), part=1))
    bench._cross_check(contestants, "case")
    printed = capsys.readouterr().out
    assert "bad dW disagrees" in printed and "ref dW" not in printed


def reference_forward_peer():
    """A peer computing the forward pass with the test reference (NHWC, as dwconv)."""
    from reference import conv2d_forward

    def forward(problem):
        s = problem.shape
        y = conv2d_forward(problem.x, problem.w, (s.stride, s.stride), bench._explicit_padding(s),
                           "NHWC", (1, 1))
        return bench.Contestant("ref", lambda: y, lambda y: (y,))

    return bench.Peer("ref", "NHWC", "reference", "0", forward, None, None)


def test_a_missing_peer_is_shown_as_not_measured(tmp_path, capsys, monkeypatch):
    """TensorFlow absent (its import fails as if not installed), a reference peer present: the
    header names the peer not measured and the pip command that adds it, its column says n/a."""
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    monkeypatch.setattr(bench, "PEER_PACKAGES", {
        "reference": bench.PeerPackage(lambda threads: [reference_forward_peer()], ("ref",), ("forward",),
                                       ("reference",)),
        "tensorflow": bench.PEER_PACKAGES["tensorflow"],
    })
    assert bench.main(["--quick", "--shapes", SHAPE, "--layout", "NHWC", "--no-save"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "not measured (n/a in the tables): tf; to add them: pip install tensorflow-cpu" in printed
    assert any(line.startswith("  tensorflow: ModuleNotFoundError") for line in printed)
    columns = next(line for line in printed if line.startswith("shape "))
    assert columns.split()[-5:] == ["ref", "tf", "best", "peer", "ratio"]
    row = next(line for line in printed if line.startswith(SHAPE))
    assert row.split()[-3:-1] == ["n/a", "ref"]


def test_missing_peers_are_n_a_only_in_the_sections_they_time():
    """ONNX Runtime has no backward peer: missing, it gets an n/a column in the forward tables only."""
    missing = {"onnxruntime": "ModuleNotFoundError", "tensorflow": "ModuleNotFoundError"}
    assert bench._unmeasured_peer_names(missing, "forward") == ["ort", "tf"]
    assert bench._unmeasured_peer_names(missing, "backward") == ["tf"]
    assert bench._pip_names(missing) == "onnxruntime onnx tensorflow-cpu"


IMAGE_CASE = "512-gray-k3-u8"


def reference_image_peer(wrong_by=0):
    """A peer filtering images with the test reference (rounded as OpenCV rounds), off by `wrong_by`;
    it takes only 8-bit images, as PyTorch takes only float ones."""
    from reference import conv2d_forward

    def images(problem):
        if problem.image.dtype != np.uint8:
            return None
        k = problem.shape.k
        x = problem.image.reshape(1, *problem.image.shape).astype(np.float64)
        y = conv2d_forward(x, problem.kernel[:, :, None], (1, 1), ((k // 2,) * 2,) * 2, "NHWC", (1, 1),
                           padding_mode="reflect")
        y = np.clip(np.rint(y[0]) + wrong_by, 0, 255).astype(np.uint8)
        return bench.Contestant("ref", lambda: y, bench._image_result)

    return bench.Peer("ref", "HWC", "reference", "0", None, None, None, images)


@pytest.mark.parametrize("wrong_by", [0, 2])
def test_the_image_section_compares_with_peers_that_agree(wrong_by, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "PEER_PACKAGES", {
        "reference": bench.PeerPackage(lambda threads: [reference_image_peer(wrong_by)], ("ref",), ("images",),
                                       ("reference",)),
    })
    saved = tmp_path / "results.json"
    argv = ["--quick", "--images", "--shapes", IMAGE_CASE, "512-gray-k3-f32", "--json", str(saved)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "Images: one kernel on every channel" in printed
    # rounding may differ by 1 where float sums tie; by 2, the peer computes something else
    assert ("ref disagrees with dwconv HWC on 512-gray-k3-u8" in printed) == (wrong_by == 2)
    assert "Forward" not in printed  # (no forward shape was asked for)

    results = json.loads(saved.read_text())
    rows = {row["shape"]: row for row in results["comparisons"]}
    assert set(rows) == {IMAGE_CASE, "512-gray-k3-f32"}
    u8, f32 = rows[IMAGE_CASE], rows["512-gray-k3-f32"]
    assert u8["section"] == "images" and u8["layout"] == "HWC" and u8["best_peer"] == "ref"
    assert u8["ratio"] == pytest.approx(u8["peers_ms"]["ref"] / u8["dwconv_ms"])
    assert f32["peers_ms"] == {} and f32["ratio"] is None  # the peer took no float image
    seconds, figures = u8["dwconv_ms"] / 1e3, results["machine"]["limits"]["by_threads"][str(THREADS)]
    assert u8["gflop_per_s"] == pytest.approx(2 * 9 * 512 * 512 / seconds / 1e9)
    assert u8["gb_per_s"] == pytest.approx(2 * 512 * 512 / seconds / 1e9)
    assert u8["pct_of_peak"] == pytest.approx(100 * u8["gflop_per_s"] / figures["fma_peak_gflops"])
    f32_row = next(line for line in printed.splitlines() if line.startswith("512-gray-k3-f32"))
    assert f32_row.split()[-3:] == ["-", "-", "-"]  # the peer's time, best peer and ratio

    assert bench.main(["--markdown", str(saved)]) == 0
    table = capsys.readouterr().out
    assert "**Images, batch 1** (ms)" in table and f"| {IMAGE_CASE} | HWC |" in table


def test_image_problems_hold_what_the_cases_say():
    rng = np.random.default_rng(0)
    for case in bench.IMAGE_SUITE:
        if case.H * case.W > 1080 * 1920:
            continue
        problem = bench._make_image_problem(case, rng)
        assert problem.image.shape == (case.H, case.W, case.C)
        assert problem.image.dtype == bench.IMAGE_DTYPES[case.dtype]
        assert problem.kernel.shape == ((case.k,) if case.separable else (case.k, case.k))
        assert problem.kernel.sum() == pytest.approx(1, rel=1e-5) and problem.kernel.min() > 0


def test_results_and_chart_are_written_by_default(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")  # (without it: the test below)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "PEER_PACKAGES", {
        "reference": bench.PeerPackage(lambda threads: [reference_forward_peer()], ("ref",), ("forward",),
                                       ("reference",)),
    })
    assert bench.main(["--quick", "--shapes", SHAPE, "--layout", "NHWC"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "results written to bench-results.json and bench-results.png")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bench-results.json", "bench-results.png"]
    results = json.loads((tmp_path / "bench-results.json").read_text())
    assert [row["best_peer"] for row in results["comparisons"]] == ["ref"]
    assert (tmp_path / "bench-results.png").read_bytes().startswith(b"\x89PNG")


def test_without_matplotlib_the_results_are_written_and_the_chart_skipped(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for module in ("matplotlib", "matplotlib.figure"):  # imports of them fail as if not installed
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(bench, "PEER_PACKAGES", {
        "reference": bench.PeerPackage(lambda threads: [reference_forward_peer()], ("ref",), ("forward",),
                                       ("reference",)),
    })
    assert bench.main(["--quick", "--shapes", SHAPE, "--layout", "NHWC", "--json", "run.json"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("results written to run.json; chart skipped (")
    assert last.endswith("pip install matplotlib to get it")
    assert [path.name for path in tmp_path.iterdir()] == ["run.json"]


def test_no_save_writes_nothing_and_the_run_reports_each_shape_in_plain_lines(tmp_path, capsys, monkeypatch):
    """stderr captured is not a terminal: plain lines, no carriage return or escape sequence."""
    monkeypatch.chdir(tmp_path)
    argv = ["--quick", "--no-peers", "--shapes", SHAPE, "mnv2-14x576-s1", "--layout", "NHWC", "--no-save"]
    assert bench.main(argv) == 0
    captured = capsys.readouterr()
    assert "results written" not in captured.out and list(tmp_path.iterdir()) == []
    assert "[1/2] forward, batch 1: mnv2-14x576-s1\n" in captured.err
    assert "[2/2] forward, batch 1: mnv2-7x960-s1\n" in captured.err
    assert "\x1b" not in captured.err and "\r" not in captured.err


@pytest.mark.parametrize("argv, message", [
    (["--no-save", "--json", "run.json"], "--no-save contradicts"),
    (["--plot", "no-such-folder/chart.png"], "--plot no-such-folder/chart.png: no such folder"),
    (["--json", "no-such-folder/run.json"], "--json no-such-folder/run.json: no such folder"),
])
def test_bad_output_options_fail_before_measuring(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        bench.main(["--quick", "--no-peers"] + argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_on_a_terminal_rewrites_one_line_and_erases_it(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    terminal, clock = FakeTerminal(), FakeClock()
    progress = bench.Progress(3, terminal, clock)
    progress.start("forward, batch 1: a")
    clock.now += 1
    progress.update(1, 10)  # too early for an estimate
    assert terminal.getvalue() == "\r\x1b[K[1/3] forward, batch 1: a"
    clock.now += 3
    progress.update(2, 10)
    clock.now += 0.5
    progress.update(3, 10)  # too soon after the last one
    clock.now += 0.5
    progress.update(5, 10)
    progress.finish()
    assert terminal.getvalue().split("\r\x1b[K")[1:] == [
        "[1/3] forward, batch 1: a",
        "[1/3] forward, batch 1: a: 20% done, about 16 s left",
        "[1/3] forward, batch 1: a: 50% done, about 5 s left",
        "",
    ]


@pytest.mark.parametrize("environment", [{"NO_COLOR": "1", "TERM": "xterm"}, {"TERM": "dumb"}])
def test_progress_without_control_codes_writes_plain_lines(environment, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    terminal, clock = FakeTerminal(), FakeClock()
    progress = bench.Progress(2, terminal, clock)
    progress.start("backward, batch 16: a")
    for done, seconds in ((1, 1), (2, 3), (3, 5), (4, 10), (5, 1)):
        clock.now += seconds
        progress.update(done, 100)
    progress.finish()
    progress.start("backward, batch 16: b")
    assert terminal.getvalue() == (
        "[1/2] backward, batch 16: a\n"
        "[1/2] backward, batch 16: a: 2% done, about 3 min left\n"  # 4 s for 2 of 100 steps
        "[1/2] backward, batch 16: a: 4% done, about 8 min left\n"  # 10 s after the last line
        "[2/2] backward, batch 16: b\n"
    )


SMALL_CHUNKED_CASE = bench.ChunkedCase(46, 37, 3, 16, 5)  # uneven chunks, and a last one under the halo


def test_chunked_image_contestants_compute_the_in_memory_filter():
    pytest.importorskip("dask_image")
    from reference import conv2d_forward

    rng = np.random.default_rng(5)
    image = rng.random((46, 37, 3), dtype=np.float32)
    kernel = rng.random((5, 5), dtype=np.float32)
    expected = conv2d_forward(image[None].astype(np.float64), np.repeat(kernel[:, :, None], 3, axis=2),
                              (1, 1), ((2, 2), (2, 2)), "NHWC", (1, 1), padding_mode="reflect")[0]
    contestants = bench._chunked_contestants(image, kernel, 16, THREADS)
    assert [c.label for c in contestants] == ["dwconv.dask", "dwconv.dask out=", "dask-image", "in memory"]
    for c in contestants:
        [flat] = c.as_nhwc(c.run())
        np.testing.assert_allclose(flat.reshape(image.shape), expected, rtol=1e-5, atol=1e-5, err_msg=c.label)


def test_the_chunked_image_section_prints_times_and_ratios(capsys):
    pytest.importorskip("dask_image")
    args = bench.parse_args(["--no-save"])[1]
    ms = bench._run_chunked_images(args, np.random.default_rng(6), SMALL_CHUNKED_CASE)
    printed = capsys.readouterr().out
    assert "Chunked image (dask): 46x37x3 float32 in 16x16x3 chunks, 5x5 kernel" in printed
    assert "disagrees" not in printed
    assert set(ms) == {"dwconv.dask", "dwconv.dask out=", "dask-image", "in memory"} and min(ms.values()) > 0
    row = next(line for line in printed.splitlines() if line.startswith("46x37x3-k5-f32"))
    assert row.split()[-2:] == ["/".join(f"{ms[label] / ms[dask]:.2f}" for dask in ("dwconv.dask", "dwconv.dask out="))
                                for label in ("dask-image", "in memory")]


def test_the_chunked_image_section_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_image", None)  # (an import of it then raises ImportError)
    args = bench.parse_args(["--no-save"])[1]
    assert bench._run_chunked_images(args, np.random.default_rng(6), SMALL_CHUNKED_CASE) is None
    assert 'pip install "dask[array]" dask-image adds it' in capsys.readouterr().out


# The models section's cases at a size that runs in a few seconds: every pass, both memory formats.
TINY_MODEL_CASES = (
    bench.ModelCase("tiny ConvNeXt", "convnext_stack", {"blocks": 2, "dim": 8, "kernel": 7}, (8, 8, 8), (1,),
                    ("NCHW", "channels_last"), {"forward": 1.1, "fwd+bwd": 1.5}),
    bench.ModelCase("tiny MobileNetV2", "mobilenetv2_stack", {"blocks": 1, "channels": 4, "expansion": 2, "kernel": 3},
                    (4, 8, 8), (1,), ("NCHW",), {"forward": 1.1, "fwd+bwd": None}),
    bench.ModelCase("tiny causal conv1d", "causal_conv1d", {"channels": 16, "kernel": 4}, (32, 16), (2,), ("NLC",),
                    {"forward": 2.0, "backward": 2.0, "fwd+bwd": None}),
)
# One thread: tiny calls on two threads wait at every barrier for a thread preempted by other processes.
MODELS_ARGV = ["--quick", "--no-peers", "--threads", "1", "--shapes", SHAPE, "--layout", "NHWC", "--models"]


def test_the_models_section_times_every_row_and_renders_markdown(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(bench, "MODEL_CASES", TINY_MODEL_CASES)
    saved = tmp_path / "results.json"
    assert bench.main(MODELS_ARGV + ["--json", str(saved)]) == 0
    printed = capsys.readouterr().out
    assert "stock against dwconv.torch.convert()" in printed and "error" not in printed
    expected = [(case.name, which, batch, memory_format, case.targets[which])
                for case in TINY_MODEL_CASES for memory_format in case.memory_formats
                for batch in case.batches for which in case.targets]
    assert len(expected) == 9
    table = [line.split() for line in printed.splitlines() if line.startswith("tiny ")]
    assert [(" ".join(cells[:-9]), cells[-9], int(cells[-8]), cells[-7]) for cells in table] == [
        row[:4] for row in expected]

    results = json.loads(saved.read_text())
    rows = results["models"]
    assert [(r["name"], r["pass"], r["batch"], r["memory_format"], r["target"]) for r in rows] == expected
    for row, cells in zip(rows, table):
        assert row["torch_ms"] > 0 and row["dwconv_ms"] > 0
        assert row["speedup"] == pytest.approx(row["torch_ms"] / row["dwconv_ms"])
        assert cells[-4:-1] == [f"{row['speedup']:.2f}", f"{row['target']:g}" if row["target"] else "-",
                                ("yes" if row["speedup"] >= row["target"] else "no") if row["target"] else "-"]
        # the speedup bound of the time the stock model spends in the layers taken over (none for a
        # backward alone)
        assert (row["bound"] > 1 and cells[-1] == f"{row['bound']:.2f}") if row["pass"] != "backward" else (
            row["bound"] is None and cells[-1] == "-")
    measured = {(m["shape"], m["contestant"]) for m in results["measurements"] if m["section"] == "models"}
    assert len(measured) == 2 * len(expected)

    assert bench.main(["--markdown", str(saved)]) == 0
    markdown = capsys.readouterr().out
    assert "**PyTorch models**" in markdown
    assert "| model | pass | batch | format | torch | dwconv | speedup | target | met | bound |" in markdown
    assert "| tiny ConvNeXt | fwd+bwd | 1 | channels_last |" in markdown
    assert "| tiny causal conv1d | backward | 2 | NLC |" in markdown


def test_a_converted_model_that_computes_something_else_stops_the_models_section(tmp_path, capsys, monkeypatch):
    torch = pytest.importorskip("torch")
    import dwconv.torch

    convert = dwconv.torch.convert

    def wrong_convert(model):
        with torch.no_grad():
            next(model.parameters()).add_(0.1)  # (the copy's: the stock model keeps its weights)
        return convert(model)

    monkeypatch.setattr(dwconv.torch, "convert", wrong_convert)
    monkeypatch.setattr(bench, "MODEL_CASES", TINY_MODEL_CASES)
    saved = tmp_path / "results.json"
    assert bench.main(MODELS_ARGV + ["--json", str(saved)]) == 0
    printed = capsys.readouterr().out
    assert "  error: dwconv disagrees with torch on tiny ConvNeXt forward batch 1 NCHW" in printed
    assert "the models section stops here" in printed
    assert not [line for line in printed.splitlines() if line.startswith("tiny ")]
    assert json.loads(saved.read_text())["models"] == []


def test_without_torch_the_models_section_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # (an import of it then raises ImportError)
    monkeypatch.delitem(sys.modules, "dwconv._bench_models", raising=False)
    assert bench.main(MODELS_ARGV + ["--no-save"]) == 0
    printed = capsys.readouterr().out
    assert "PyTorch models: not measured (" in printed and "); pip install torch adds them" in printed


def test_the_models_section_runs_by_default_in_a_full_run_only():
    assert bench.parse_args(["--no-save"])[1].models
    assert not bench.parse_args(["--no-save", "--quick"])[1].models
    assert not bench.parse_args(["--no-save", "--shapes", SHAPE])[1].models
    assert bench.parse_args(["--no-save", "--shapes", SHAPE, "--models"])[1].models
