from __future__ import annotations

from datetime import date

from batch.tools.report_page import page, segment_summary, staleness_note

MONDAY, TUESDAY = date(2026, 11, 23), date(2026, 11, 24)
MARTS = {
    "mart_daily_orders": [
        {"date": TUESDAY, "orders": 40, "completed": 30, "cancelled": 2, "completion_rate": 0.75, "items": 90,
         "customers": 35},
        {"date": MONDAY, "orders": 10, "completed": 5, "cancelled": 1, "completion_rate": 0.5, "items": 20,
         "customers": 9}],
    "mart_payment_mix": [
        {"date": MONDAY, "payment_method_key": 1, "payment_method": "Card", "provider": "Visa", "orders": 9,
         "share": 1.0}],
    "mart_top_products": [
        {"date": MONDAY, "rank": 1, "product_key": 7, "product": "Old news", "quantity": 3, "orders": 1},
        {"date": TUESDAY, "rank": 2, "product_key": 8, "product": "<b>Kettle</b>", "quantity": 11, "orders": 4},
        {"date": TUESDAY, "rank": 1, "product_key": 9, "product": "Teapot", "quantity": 12, "orders": 5}],
    "mart_customer_segments": [
        {"customer_id": 1, "orders": 3, "items": 7, "segment": "champion"},
        {"customer_id": 2, "orders": 1, "items": 2, "segment": "new"},
        {"customer_id": 3, "orders": 1, "items": 1, "segment": "new"}],
}


def test_the_page_has_four_charts_their_tables_and_the_plotly_script_once():
    html = page(MARTS, generated_at="2026-11-24 10:00 UTC")

    for anchor in ("daily", "payment-mix", "top-products", "segments"):
        assert f'id="chart-{anchor}"' in html
    assert html.count("window.Plotly") >= 1 and html.count("plotly.js v") == 1  # inlined once: opens offline
    assert "<td>2026-11-23</td><td>10</td><td>5</td><td>1</td><td>50.0%</td>" in html
    assert "Top products on 2026-11-24" in html and "Old news" not in html  # the latest day only
    assert "&lt;b&gt;Kettle&lt;/b&gt;</td>" in html  # names are escaped in the tables


def test_segments_are_summed_best_first():
    assert segment_summary(MARTS["mart_customer_segments"]) == [
        {"segment": "champion", "customers": 1, "orders": 3, "items": 7},
        {"segment": "new", "customers": 2, "orders": 2, "items": 3}]


def test_the_page_says_which_deferred_jobs_are_behind_and_past_the_bound():
    assert staleness_note({"HistoryJob": None, "MartsJob": None}, 300) == (
        "The deferred work (history, dimensions, products, marts) is current with its inputs.")
    note = staleness_note({"HistoryJob": None, "DimensionsJob": 42.4, "MartsJob": 420.0}, 300)

    assert note == "Not yet applied by the deferred work: DimensionsJob 42 s behind; MartsJob 420 s behind (past its 300 s bound)."
    assert note in page(MARTS, generated_at="2026-11-24 10:00 UTC", staleness=note)
