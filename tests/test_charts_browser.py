"""Charts and tables that read right in a real Chromium: the compare page's
one line per run, box per run of cross-validation folds and readable
parallel coordinates; the runs table's column chooser; the missing-values
map by row number. Settle times of the chart pages are printed (not
asserted: a shared machine's timings are no test)."""

import time
from itertools import pairwise

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_PARAM = "preprocessing__numeric__imputer_strategy"


@pytest.fixture
def compared(make_user):
    """Three finished runs: a 5,000-step loss curve each, long param names,
    5-fold cross-validation in two of them."""
    from apps.experiments.services import experiment_create, run_create, run_finish, run_log_batch

    scientist = make_user("Data Scientist", username="chart_scientist")
    experiment = experiment_create(actor=scientist, name="charts-qc")
    runs = []
    for index, (estimator, auc) in enumerate([("random_forest", 0.91), ("logistic_regression", 0.72),
                                              ("hist_gradient_boosting", 0.86)]):
        run = run_create(actor=scientist, experiment=experiment, name=f"{estimator} run")
        metrics = [{"key": "iteration_val_loss", "value": (1 + index) / (1 + step / 100), "step": step}
                   for step in range(5000)]
        metrics.append({"key": "test_roc_auc", "value": auc})
        if index < 2:
            metrics += [{"key": "cv_roc_auc", "value": auc - 0.02 + fold / 100, "step": fold} for fold in range(5)]
        for start in range(0, len(metrics), 1000):
            run_log_batch(actor=scientist, run_id=run.pk, metrics=metrics[start:start + 1000])
        run_log_batch(actor=scientist, run_id=run.pk, params=[
            {"key": "estimator", "value": estimator}, {"key": LONG_PARAM, "value": ["mean", "median", "mean"][index]},
            {"key": "class_weight_for_the_rare_failures", "value": str(index)},
            {"key": "max_depth", "value": str(3 + index)}])
        run_finish(actor=scientist, run=run, status="finished")
        runs.append(run)
    return {"scientist": scientist, "experiment": experiment, "runs": runs}


def settle(page, url: str, charts: str) -> float:
    """Seconds until the network is idle and the charts in view are drawn."""
    started = time.perf_counter()
    page.goto(url, wait_until="networkidle")
    for chart in page.locator(charts).all():
        if chart.is_visible() and chart.bounding_box()["y"] < page.viewport_size["height"]:
            expect(chart).to_have_attribute("data-rendered", "1", timeout=30_000)
    return time.perf_counter() - started


def test_compare_page_one_line_per_run_folds_as_boxes_readable_axes(page, browser_login, compared):
    runs = compared["runs"]
    browser_login("chart_scientist")
    url = "/experiments/compare/?runs=" + ",".join(str(run.pk) for run in runs)
    seconds = settle(page, url, "#overlay-chart, #parallel-chart")
    print(f"\ncompare page settled in {seconds:.2f} s")

    overlay = page.locator("#overlay-chart")
    expect(overlay).to_have_attribute("data-rendered", "1")
    expect(overlay.locator(".scatterlayer .trace")).to_have_count(3)
    legend = overlay.locator(".legend .traces .legendtext").all_text_contents()
    assert legend == [f"{run.name} #{run.pk}" for run in runs]

    # Parallel coordinates: one title (the card's), axis names that do not
    # overlap, truncated, the whole name on hover.
    parallel = page.locator("#parallel-chart")
    expect(parallel).to_have_attribute("data-rendered", "1")
    assert parallel.locator(".gtitle").count() == 0
    assert page.locator("h2", has_text="Params against test_roc_auc").count() == 1
    # Per axis: its name (bold, above), then its two end labels.
    names = parallel.locator(".annotation").all()[::3]
    texts = [name.text_content() for name in names]
    assert texts[-1] == "test_roc_auc" and any(t.endswith("…") for t in texts)
    assert LONG_PARAM not in texts
    boxes = sorted((b["x"], b["x"] + b["width"]) for b in (n.locator("text").bounding_box() for n in names))
    for (_, right), (left, _) in pairwise(boxes):
        assert right <= left + 1, f"axis names overlap: {texts}"
    expect(parallel.locator(".scatterlayer .trace")).to_have_count(4)  # 3 runs and the colour scale
    names[0].locator("text").hover()
    expect(parallel.locator(".hoverlayer .hovertext")).to_contain_text("class_weight_for_the_rare_failures")

    # Cross-validation folds: a box per run that has them, not a step line.
    page.locator("#cv-chart").scroll_into_view_if_needed()
    expect(page.locator("#cv-chart")).to_have_attribute("data-rendered", "1", timeout=30_000)
    expect(page.locator("#cv-chart .boxlayer .trace")).to_have_count(2)
    assert page.locator("#cv-chart .scatterlayer .trace .lines path").count() == 0
    assert page.errors == []


def test_runs_table_column_chooser_is_remembered_and_the_table_scrolls_in_its_card(page, browser_login,
                                                                                     compared):
    browser_login("chart_scientist")
    page.goto(f"/experiments/{compared['experiment'].pk}/")
    table = page.locator("#runs-table")
    column = table.locator("th[data-column='metrics.test_roc_auc']")
    expect(column).to_be_visible()
    page.locator("#column-chooser summary").click()
    page.locator("#column-chooser input[data-column='metrics.test_roc_auc']").uncheck()
    expect(column).to_be_hidden()
    page.reload()
    expect(table.locator("th[data-column='metrics.test_roc_auc']")).to_be_hidden()
    expect(table.locator("th[data-column='params.estimator']")).to_be_visible()
    page.locator("#column-chooser summary").click()
    page.locator("#column-chooser input[data-column='metrics.test_roc_auc']").check()
    expect(table.locator("th[data-column='metrics.test_roc_auc']")).to_be_visible()

    # A narrow window: the table scrolls inside its wrapper, the card keeps its width.
    page.set_viewport_size({"width": 700, "height": 800})
    wrapper = page.locator("#runs-table-scroll")
    card = page.locator("section.card", has=wrapper)
    assert wrapper.bounding_box()["width"] <= card.bounding_box()["width"]
    assert page.evaluate("document.getElementById('runs-table-scroll').scrollWidth") > \
        page.evaluate("document.getElementById('runs-table-scroll').clientWidth")
    assert wrapper.bounding_box()["x"] + wrapper.bounding_box()["width"] <= \
        card.bounding_box()["x"] + card.bounding_box()["width"] + 1
    assert page.errors == []


def test_missing_values_map_is_labelled_by_row_number(page, browser_login, make_user):
    from apps.experiments.tests.conftest import make_lab_version

    scientist = make_user("Data Scientist", username="map_scientist")
    version = make_lab_version(scientist, rows=300)
    browser_login("map_scientist")
    seconds = settle(page, f"/datasets/versions/{version.pk}/", "[data-plotly]")
    print(f"\ndataset version page settled in {seconds:.2f} s")
    chart = page.locator("#missing-map")
    chart.scroll_into_view_if_needed()
    expect(chart).to_have_attribute("data-rendered", "1", timeout=30_000)
    ticks = chart.locator(".yaxislayer-above .ytick text").all_text_contents()
    assert ticks and all(t.startswith("rows ") for t in ticks), ticks
    assert chart.locator(".ytitle").text_content() == "row number"
    assert page.errors == []


def test_chart_pages_settle_times_are_recorded(page, browser_login, compared):
    """Prints each chart page's settle time; asserts only that the charts drew."""
    run = compared["runs"][0]
    browser_login("chart_scientist")
    pages = {
        "run": (f"/experiments/runs/{run.pk}/", ".metric-chart"),
        "compare": ("/experiments/compare/?runs=" + ",".join(str(r.pk) for r in compared["runs"]),
                    "#overlay-chart, #parallel-chart"),
        "experiment": (f"/experiments/{compared['experiment'].pk}/", "[data-plotly]"),
    }
    timings = {}
    for name, (url, charts) in pages.items():
        timings[name] = sorted(settle(page, url, charts) for _ in range(3))[1]
        if name != "experiment":
            assert page.locator(".js-plotly-plot").count() >= 1, name
    print("\nsettle times (median of 3): " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    # The 5,000-step curve reached the browser downsampled.
    page.goto(f"/experiments/runs/{run.pk}/")
    chart = page.locator(".metric-chart[data-plotly-src*='iteration_val_loss']")
    chart.scroll_into_view_if_needed()
    expect(chart).to_have_attribute("data-rendered", "1", timeout=30_000)
    assert chart.locator(".scatterlayer .trace path.js-line").count() == 1
    assert "downsampled" in chart.locator(".gtitle").text_content()
    assert page.errors == []
