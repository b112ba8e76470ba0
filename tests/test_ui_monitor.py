"""The Run monitor's and the Overview's corrected behaviour (issue 15), with
`streamlit.testing.v1.AppTest` on the real store of each engine: test_ui_app's known
graph plus runs recorded here by capture's own recorder (`builders.RunBuilder`), one of
them running and steered by this test acting as its training (`kb.steering.Steering`'s
claim and resolve, as a training's poller does).

Also the TensorBoard-style curves (`ui.charts.metric_panel`, `ui.series.ema`), the
server-side sort of the Overview's read (`queries.app.runs_page`) and the readable
default run names (`capture.run_start.default_run_name`)."""

from __future__ import annotations

import json
import math
import re

import builders
import pytest
import test_ui_app
from test_ui_app import ADAM, SGD, button, frames, open_page, texts

from provkb.capture import run_start
from provkb.capture.facts import Hyperparameter, Source
from provkb.errors import QueryError
from provkb.kb.steering import Steering
from provkb.ontology import SteeringStatus
from provkb.queries import app as reads
from provkb.ui import charts, common, series

known_store = test_ui_app.known_store  # the fixtures: the known graph, the app's env
app_env = test_ui_app.app_env

STEERED = "5ee7ed000001"  # running, steerable beta_1, learning_rate, momentum
LIVE_LR = [0.01, 0.01, 0.005]  # its logged learning rate per epoch


def _loss(n: int) -> float:
    return round(1.0 / n + (0.05 if n % 2 else 0.0), 6)


@pytest.fixture(scope="module")
def steered(known_store):
    """A running run recorded by capture's recorder: 3 epochs of loss, accuracy and
    learning_rate; beta_1 sorts before learning_rate among its steerable values."""
    hps = [
        Hyperparameter("optimizer", "adam", Source.OPTIMIZER),
        Hyperparameter("beta_1", 0.9, Source.OPTIMIZER, tracked=True, steerable=True),
        Hyperparameter("learning_rate", 0.01, Source.OPTIMIZER, tracked=True, steerable=True),
        Hyperparameter("momentum", 0.0, Source.OPTIMIZER, tracked=True, steerable=True),
        Hyperparameter("batch_size", 32, Source.FIT),
    ]
    run = builders.RunBuilder(
        STEERED,
        name="steered-live",
        experiment="opt-sweep",
        project="vision",
        started=builders.at(seconds=60),
        epochs_planned=10,
        hyperparameters=hps,
    )
    for n in range(1, 4):
        run.epoch(n, {"loss": _loss(n), "accuracy": 0.5 + n / 20, "learning_rate": LIVE_LR[n - 1]})
    run.write(known_store)
    common.refresh()
    return run


def _monitor(run_id: str):
    return open_page("page_monitor.py", **{common.SELECTED_RUN: run_id})


def _panels(at) -> dict[str, dict]:
    """The monitor's metric panels by family (their figure specs)."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = (spec["layout"].get("title") or {}).get("text")
        if title and spec["layout"].get("hovermode") == "x unified":
            out[title] = spec
    return out


def _trace(spec: dict, name: str) -> dict:
    return next(t for t in spec["data"] if t.get("name") == name)


# -- curves ------------------------------------------------------------------------------
def test_ema_is_tensorboards_debiased_smoothing() -> None:
    ys = [1.0, 0.0, 1.0, 0.0]
    w = 0.6
    # TensorBoard: last = last * w + (1 - w) * y, divided by 1 - w ** n.
    last, expected = 0.0, []
    for n, y in enumerate(ys, start=1):
        last = last * w + (1 - w) * y
        expected.append(last / (1 - w**n))
    assert series.ema(ys, w) == pytest.approx(expected)
    assert series.ema(ys, w)[0] == 1.0  # debiased: the first point is not pulled to 0
    assert series.ema(ys, 0.0) == ys
    assert series.ema([0.5, 0.5, 0.5], 0.9) == [0.5, 0.5, 0.5]  # constant: kept
    nan = series.ema([1.0, math.nan, 3.0], 0.5)
    assert math.isnan(nan[1]) and nan[2] == pytest.approx((0.25 + 1.5) / 0.75)
    with pytest.raises(ValueError, match="smoothing weight must be in"):
        series.ema(ys, 1.0)


def test_metric_families_units_and_log_default() -> None:
    keys = ["val_loss", "accuracy", "learning_rate", "loss", "val_accuracy", "mae"]
    assert series.families(keys) == {
        "loss": ["loss", "val_loss"],
        "accuracy": ["accuracy", "val_accuracy"],
        "learning_rate": ["learning_rate"],
        "mae": ["mae"],
    }
    assert series.axis_title("accuracy") == "accuracy (fraction, 0-1)"
    assert series.axis_title("loss") == "loss (loss function value)"
    assert series.axis_title("learning_rate") == "learning rate (per step)"
    assert series.axis_title("epoch_seconds") == "epoch seconds (s)"
    assert series.default_log("learning_rate") and not series.default_log("loss")


def test_a_panel_overlays_runs_with_smoothed_raw_and_mean_lines() -> None:
    a = [{"epoch": n, "metrics": {"loss": 1 / n, "val_loss": 1.2 / n}} for n in (1, 2, 3)]
    b = [{"epoch": n, "metrics": {"loss": 2 / n}} for n in (1, 2)]
    fig = charts.metric_panel(
        {"run-a": a, "run-b": b}, "loss", ["loss", "val_loss"], smoothing=0.5, k=2
    ).to_plotly_json()
    names = [t["name"] for t in fig["data"]]
    assert names == [
        "loss · run-a (raw)",
        "loss · run-a (smoothed 0.5)",
        "loss · run-a (mean of last 2)",
        "val_loss · run-a (raw)",
        "val_loss · run-a (smoothed 0.5)",
        "val_loss · run-a (mean of last 2)",
        "loss · run-b (raw)",
        "loss · run-b (smoothed 0.5)",
        "loss · run-b (mean of last 2)",
    ]
    raw, smooth, mean = fig["data"][:3]
    assert list(raw["y"]) == [1.0, 0.5, 1 / 3] and "0.3" in raw["line"]["color"]  # faint
    assert list(smooth["y"]) == pytest.approx(series.ema([1.0, 0.5, 1 / 3], 0.5))
    assert list(mean["y"]) == pytest.approx([1.0, 0.75, (0.5 + 1 / 3) / 2])
    assert raw["hovertemplate"].startswith("%{y}")  # the exact value on hover
    layout = fig["layout"]
    assert layout["hovermode"] == "x unified" and layout["yaxis"]["type"] == "linear"
    assert layout["yaxis"]["title"]["text"] == "loss (loss function value)"
    log = charts.metric_panel({"r": a}, "loss", ["loss"], log=True).to_plotly_json()
    assert log["layout"]["yaxis"]["type"] == "log"
    assert [t["name"] for t in log["data"]] == ["loss"]  # no smoothing, no window: raw
    # whole decades, one label each: a constant learning rate gets 10^-3, not digits
    assert log["layout"]["yaxis"]["dtick"] == 1
    lo, hi = log["layout"]["yaxis"]["range"]
    assert lo < math.log10(1 / 3) and hi > 0
    lr = [{"epoch": n, "metrics": {"learning_rate": 0.001}} for n in (1, 2, 3)]
    flat = charts.metric_panel({"r": lr}, "learning_rate", ["learning_rate"], log=True)
    assert list(flat.to_plotly_json()["layout"]["yaxis"]["range"]) == pytest.approx([-3.5, -2.5])


def test_monitor_draws_a_panel_per_family_with_smoothing_log_and_window(
    known_store, app_env, steered
) -> None:
    at = _monitor(STEERED)
    panels = _panels(at)
    assert set(panels) == {"loss", "accuracy", "learning rate"}
    assert at.multiselect(key="mon_panels").value == ["loss", "accuracy", "learning_rate"]
    loss = panels["loss"]
    assert loss["layout"]["yaxis"]["title"]["text"] == "loss (loss function value)"
    raw = _trace(loss, "loss (raw)")
    assert raw["y"] == [_loss(n) for n in (1, 2, 3)]
    smooth = _trace(loss, "loss (smoothed 0.6)")
    assert smooth["y"] == pytest.approx(series.ema(raw["y"], 0.6))
    window = _trace(loss, "loss (mean of last 3)")  # the moving-average window draws
    assert window["y"] == pytest.approx(series.trailing_mean(raw["y"], 3))
    lr = panels["learning rate"]
    assert lr["layout"]["yaxis"]["type"] == "log"  # learning rates: log by default
    assert lr["layout"]["yaxis"]["title"]["text"] == "learning rate (per step)"

    at.slider(key="mon_smoothing").set_value(0.0).run()
    at.number_input(key="mon_k").set_value(2).run()
    at.toggle(key="mon_log_learning_rate").set_value(False).run()
    panels = _panels(at)
    names = [t["name"] for t in panels["loss"]["data"]]
    assert "loss" in names and not any("smoothed" in n for n in names)
    assert _trace(panels["loss"], "loss (mean of last 2)")["y"] == pytest.approx(
        series.trailing_mean([_loss(n) for n in (1, 2, 3)], 2)
    )
    assert panels["learning rate"]["layout"]["yaxis"]["type"] == "linear"


def test_monitor_overlays_other_runs_of_the_experiment(known_store, app_env) -> None:
    at = _monitor(ADAM)
    overlay = at.multiselect(key=f"mon_overlay_{ADAM}")
    assert SGD in overlay.options or any(SGD[:8] in o for o in overlay.options)
    overlay.set_value([SGD]).run()
    accuracy = _panels(at)["accuracy"]
    names = [t["name"] for t in accuracy["data"]]
    assert "val_accuracy · adam-steered (raw)" in names
    assert f"val_accuracy · sgd-baseline · {SGD[:8]} (raw)" in names
    assert "steering" in names and "adaptation" in names  # the shown run's events


# -- header and pickers ------------------------------------------------------------------
def test_header_and_pickers_show_progress_start_time_and_short_id(
    known_store, app_env, steered
) -> None:
    at = _monitor(STEERED)
    assert "epochs 3/10" in texts(at)
    picker = next(s for s in at.selectbox if s.key.startswith("mon_run_"))
    label = next(o for o in picker.options if o.startswith("steered-live"))
    assert label == f"steered-live · running · started 01-01 10:01 · {STEERED[:8]}"
    steered.epoch(4, {"loss": _loss(4), "accuracy": 0.7, "learning_rate": 0.005})
    steered.write(known_store)
    common.refresh()
    at.run()
    assert "epochs 4/10" in texts(at)
    assert _trace(_panels(at)["loss"], "loss (raw)")["x"] == [1, 2, 3, 4]


def test_monitor_opens_the_run_its_url_names(known_store, app_env) -> None:
    at = open_page()
    at.query_params["run"] = SGD
    at.switch_page("page_monitor.py").run()
    assert "sgd-baseline" in texts(at) and f"run id `{SGD}`" in texts(at)
    assert at.query_params["run"] == SGD


# -- steering ----------------------------------------------------------------------------
def test_steering_form_defaults_to_learning_rate_and_follows_the_choice(
    known_store, app_env, steered
) -> None:
    at = _monitor(STEERED)
    picker = at.selectbox(key=f"steer_hp_{STEERED}")
    assert picker.options == ["beta_1", "learning_rate", "momentum"]
    assert picker.value == "learning_rate"
    assert "current value: **0.01**" in texts(at)
    picker.set_value("beta_1").run()
    assert "current value: **0.9**" in texts(at)
    at.selectbox(key=f"steer_hp_{STEERED}").set_value("momentum").run()
    assert "current value: **0**" in texts(at) and "0.9**" not in texts(at)


def test_a_request_shows_one_message_that_follows_it_and_the_form_empties(
    known_store, app_env, steered
) -> None:
    at = _monitor(STEERED)
    at.selectbox(key=f"steer_hp_{STEERED}").set_value("learning_rate").run()
    at.text_input(key="steer_value").input("0.0005")
    at.text_input(key="steer_reason").input("loss flat")
    at.text_input(key="steer_person").input("erin")
    button(at, "Send request").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.text_input(key="steer_value").value == ""  # emptied: no duplicate
    assert at.text_input(key="steer_reason").value == ""
    messages = [m.value for m in (*at.info, *at.success) if "Request `" in m.value]
    assert len(messages) == 1 and "is pending" in messages[0]
    assert "set learning_rate = 0.0005" in messages[0]

    steering = Steering(known_store)
    (claimed,) = steering.claim(STEERED, "test-training")
    common.refresh()
    at.run()
    messages = [m.value for m in (*at.info, *at.success) if "Request `" in m.value]
    assert len(messages) == 1 and "is being applied by the training" in messages[0]
    assert "claimed" not in texts(at)
    requests = next(f for f in frames(at) if "requestId" in f.columns)
    assert "being applied by the training" in set(requests["status"])

    epoch = steered.recorder.epochs_completed + 1
    steered.steering(
        claimed.request_id,
        "set",
        "erin",
        epoch,
        hyperparameter="learning_rate",
        value=0.0005,
        request_node=claimed.node_id,
    ).write(known_store)
    assert steering.resolve(claimed, SteeringStatus.APPLIED, appliedEpoch=epoch)
    common.refresh()
    at.run()
    shown = texts(at)
    assert not [i.value for i in at.info if "Request `" in i.value]  # no stale "pending"
    (applied,) = [s.value for s in at.success if "Request `" in s.value]
    assert f"applied: in force from epoch {epoch}" in applied
    assert "current value: **0.0005**" in shown  # the form shows the value now in force


def test_a_refused_request_says_why_once_and_keeps_the_form(known_store, app_env, steered) -> None:
    at = _monitor(STEERED)
    at.text_input(key="steer_value").input("-1")
    at.text_input(key="steer_person").input("dave")
    button(at, "Send request").click().run()
    (error,) = [e.value for e in at.error]
    assert error.startswith("Not sent to the training: learning_rate must be in (0, inf)")
    assert error.lower().count("rejected") == 0 and "recorded as request `" in error
    assert at.text_input(key="steer_value").value == "-1"  # to correct, not retype

    at.radio(key="steer_action").set_value("set").run()
    at.text_input(key="steer_value").input("")
    button(at, "Send request").click().run()
    assert any("Give the new value of learning_rate" in e.value for e in at.error)


# -- overview ----------------------------------------------------------------------------
def test_root_url_opens_the_overview(known_store, app_env) -> None:
    at = open_page()
    assert "Overview" in texts(at) and at.metric  # the counts, at /overview


def test_runs_are_sorted_over_all_pages_in_the_store(known_store, app_env) -> None:
    kb = known_store
    best = reads.runs_page(kb, limit=1, sort="best_val_accuracy", direction="desc")
    assert best[0]["name"] == "adam-steered"  # on page 2 when newest first
    newest = [r["name"] for r in reads.runs_page(kb, limit=25)]
    assert "adam-steered" not in newest
    worst = reads.runs_page(kb, limit=1, sort="best_val_accuracy", direction="asc")
    assert worst[0]["name"] == "wide-net"
    names = [r["name"] for r in reads.runs_page(kb, limit=100, sort="name", direction="asc")]
    assert names == sorted(names, key=str.lower)
    # Runs without a gain come last in both directions.
    for direction in ("asc", "desc"):
        rows = reads.runs_page(kb, limit=100, sort="gain", direction=direction)
        gains = [r["gain"] for r in rows]
        present = [g for g in gains if g is not None]
        assert gains[: len(present)] == sorted(present, reverse=direction == "desc")
        assert all(g is None for g in gains[len(present) :])
    rates = reads.runs_page(kb, limit=100, sort="learning_rate", direction="asc")
    values = [r["learning_rate"] for r in rates if r["learning_rate"] is not None]
    assert values == sorted(values)
    with pytest.raises(QueryError, match="cannot sort runs by 'name; DROP'"):
        reads.runs_page(kb, sort="name; DROP")
    with pytest.raises(QueryError, match="direction asc or desc"):
        reads.runs_page(kb, sort="name", direction="up")

    at = open_page()
    at.selectbox(key="ov_sort").set_value("best_val_accuracy").run()
    runs = frames(at)[1]
    assert runs.iloc[0]["name"] == "adam-steered"
    assert "sorted by best val_accuracy (descending) over all matching runs" in texts(at)
    at.segmented_control(key="ov_dir").set_value("asc").run()
    assert frames(at)[1].iloc[0]["name"] == "wide-net"
    at.number_input(key="ov_page").set_value(2).run()
    assert "adam-steered" in list(frames(at)[1]["name"])  # the best, on the last page


def test_overview_shows_few_columns_and_opens_a_clicked_row(known_store, app_env) -> None:
    at = open_page()
    runs = frames(at)[1]
    assert len(runs.columns) <= 8  # what fits 1,024 px; more with the Columns picker
    assert {"name", "status", "startedAtTime", "best_val_accuracy"} <= set(runs.columns)
    third = reads.runs_page(known_store, limit=25)[2]
    assert runs.iloc[2]["name"] == third["name"]
    table = next(d for d in at.dataframe if d.key and d.key.startswith("runs_table"))
    at.session_state[table.key] = {"selection": {"rows": [2], "columns": []}}
    at.run()  # the click on the third row
    assert at.session_state[common.SELECTED_RUN] == third["runId"]
    assert "Run monitor" in texts(at) and f"run id `{third['runId']}`" in texts(at)


# -- run names ---------------------------------------------------------------------------
def test_default_run_names_are_readable_and_unique_in_an_experiment() -> None:
    hps = [
        Hyperparameter("optimizer", "Adam", Source.OPTIMIZER),
        Hyperparameter("learning_rate", 0.001, Source.OPTIMIZER),
    ]
    started = "2026-03-01T09:40:12.123456+00:00"
    first = run_start.default_run_name(hps, started, "names-test", "abcdef123456")
    assert first == "adam-lr0.001-0301-094012"
    again = run_start.default_run_name(hps, started, "names-test", "0123456789ab")
    assert again == "adam-lr0.001-0301-094012-0123"  # the same second: its short id
    other = run_start.default_run_name(hps, started, "names-test-2", "0123456789ab")
    assert other == first  # another experiment
    bare = run_start.default_run_name([], started, "names-test", "ffff00000000")
    assert bare == "run-0301-094012"
    assert re.fullmatch(r"[a-z0-9._-]+", first)


def test_a_captured_run_without_a_name_gets_a_readable_one(known_store) -> None:
    import numpy as np
    from test_capture import BATCH, make_model

    from provkb import ProvenanceCallback

    rng = np.random.default_rng(3)
    x, y = rng.random((64, 64), dtype=np.float32), rng.integers(0, 10, 64)
    experiment = f"names-{STEERED}"
    callbacks = [ProvenanceCallback(experiment=experiment, store=known_store) for _ in (1, 2)]
    for cb in callbacks:  # two fits, maybe in the same second
        make_model(0.003).fit(x, y, epochs=1, batch_size=BATCH, callbacks=[cb], verbose=0)
        assert cb.writer.flush(30)
    names = [
        known_store.read(
            "MATCH (r:TrainingRun {runId: $run}) RETURN r.name AS name", run=cb.run_id
        ).rows[0]["name"]
        for cb in callbacks
    ]
    assert all(re.fullmatch(r"adam-lr0\.003-\d{4}-\d{6}(-[0-9a-f]{4})?", n) for n in names)
    assert len(set(names)) == 2  # unique within the experiment
