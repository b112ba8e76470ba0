"""Peak memory of a training process with and without capture.

The figures come from the capture-overhead processes (`capture_overhead`): each is a
fresh Python process that imports TensorFlow, trains the MLP and the CNN, and reports
its own peak RSS (`getrusage(RUSAGE_SELF).ru_maxrss`) and its RSS just before the
first timed fit. Capture's cost is the peak of the `provkb` processes minus that of
the bare ones, paired by repeat; MLflow's likewise. (Not in the quick mode, whose
variants share one process: `capture_overhead.CaptureConfig.one_process`.)
"""

from __future__ import annotations

from typing import Any

from .common import stats


def summarize(capture: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS per variant and the paired differences to the bare process, in MB."""
    samples = capture["samples"]
    by = {(s["variant"], s["rep"]): s for s in samples}
    reps = sorted({s["rep"] for s in samples})
    out: dict[str, Any] = {"variants": {}, "added": {}}
    for variant in capture["variants"]:
        mine = [s for s in samples if s["variant"] == variant]
        out["variants"][variant] = {
            "peak_rss_mb": stats([s["peak_rss_mb"] for s in mine]),
            "rss_before_fit_mb": stats([s["rss_before_mb"] for s in mine]),
            "growth_during_fits_mb": stats([s["peak_rss_mb"] - s["rss_before_mb"] for s in mine]),
        }
        if variant != "none":
            out["added"][variant] = stats(
                [
                    by[(variant, r)]["peak_rss_mb"] - by[("none", r)]["peak_rss_mb"]
                    for r in reps
                    if (variant, r) in by and ("none", r) in by
                ]
            )
    out["note"] = (
        "Peak RSS of whole training processes (TensorFlow included); 'added' is the "
        "paired difference to the bare process of the same repeat."
    )
    if capture.get("config", {}).get("one_process"):
        # One process trained every variant: its peak only grows, so a later variant's
        # "peak" includes the earlier ones' and no difference says what capture adds.
        out["one_process"] = True
        out["added"] = {}
        out["note"] = (
            "Quick mode: every variant trained in one process (see Capture overhead), "
            "so the peak RSS shown is that process's running peak after each variant and "
            "what capture adds is not measured (the full run: a fresh process each)."
        )
    return out
