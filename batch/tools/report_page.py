"""The lake report's page, from the marts' rows: charts (plotly, its script inlined so the
page opens offline) and the tables behind them. Pure: rows in, HTML out."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

Rows = Sequence[Mapping[str, Any]]
SEGMENTS = ("champion", "active", "new", "at risk", "lapsed")  # best first
STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2.5rem}table{border-collapse:collapse;font-size:.85rem}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:.85rem}"""


def table(rows: Rows, columns: Sequence[str]) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell(row[name]))}</td>" for name in columns) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1%}" if 0 <= value <= 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def daily_chart(daily: Rows) -> go.Figure:
    days = [str(row["date"]) for row in daily]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for name in ("completed", "cancelled", "orders"):
        figure.add_bar(x=days, y=[row[name] for row in daily], name=name, text=[row[name] for row in daily])
    figure.add_scatter(x=days, y=[row["completion_rate"] for row in daily], name="completion rate",
                       mode="lines+markers", secondary_y=True)
    figure.update_yaxes(title_text="orders", secondary_y=False)
    figure.update_yaxes(title_text="completion rate", tickformat=".0%", range=[0, 1], secondary_y=True)
    return figure.update_layout(title="Orders per day", barmode="group", xaxis_type="category")


def payment_chart(mix: Rows) -> go.Figure:
    by_method: dict[str, list] = defaultdict(list)
    for row in mix:
        by_method[row["payment_method"] or "Unknown"].append(row)
    figure = go.Figure()
    for method, rows in sorted(by_method.items()):
        figure.add_bar(x=[str(row["date"]) for row in rows], y=[row["orders"] for row in rows], name=method,
                       text=[row["orders"] for row in rows])
    return figure.update_layout(title="Payment mix (orders per day)", barmode="stack", xaxis_type="category")


def products_chart(top: Rows) -> go.Figure:
    ranked = sorted(top, key=lambda row: row["rank"], reverse=True)  # rank 1 at the top
    return go.Figure(go.Bar(x=[row["quantity"] for row in ranked], y=[row["product"] for row in ranked],
                            orientation="h", text=[row["quantity"] for row in ranked])).update_layout(
        title=f"Top products on {top[0]['date']} (quantity)" if top else "Top products")


def segments_chart(summary: Rows) -> go.Figure:
    return go.Figure(go.Bar(x=[row["segment"] for row in summary], y=[row["customers"] for row in summary],
                            text=[row["customers"] for row in summary])).update_layout(
        title="Customers by segment (recency x frequency)")


def segment_summary(segments: Rows) -> list[dict[str, Any]]:
    customers, orders, items = Counter(), Counter(), Counter()
    for row in segments:
        customers[row["segment"]] += 1
        orders[row["segment"]] += row["orders"]
        items[row["segment"]] += row["items"]
    return [{"segment": name, "customers": customers[name], "orders": orders[name], "items": items[name]}
            for name in SEGMENTS if customers[name]]


def staleness_note(behind: Mapping[str, float | None], bound_s: float) -> str:
    """What the continuous lake's deferred jobs have not applied yet: `behind`, job name ->
    seconds since the oldest input commit it has not applied (None: current)."""
    late = {name: seconds for name, seconds in behind.items() if seconds is not None}
    if not late:
        return "The deferred work (history, dimensions, products, marts) is current with its inputs."
    return "Not yet applied by the deferred work: " + "; ".join(
        f"{name} {seconds:.0f} s behind{' (past its ' + f'{bound_s:.0f} s bound)' if seconds > bound_s else ''}"
        for name, seconds in late.items()) + "."


def page(marts: Mapping[str, Rows], *, generated_at: str, staleness: str = "") -> str:
    """The whole page. `marts`: mart name -> its rows (dicts); `staleness`: a note on what the
    marts do not hold yet."""
    daily = sorted(marts["mart_daily_orders"], key=lambda row: row["date"])
    mix = sorted(marts["mart_payment_mix"], key=lambda row: (row["date"], row["payment_method_key"]))
    latest_day = max((row["date"] for row in marts["mart_top_products"]), default=None)
    top = sorted((row for row in marts["mart_top_products"] if row["date"] == latest_day),
                 key=lambda row: row["rank"])
    summary = segment_summary(marts["mart_customer_segments"])
    sections = [
        ("daily", "Orders per day", daily_chart(daily),
         table(daily, ("date", "orders", "completed", "cancelled", "completion_rate", "items", "customers"))),
        ("payment-mix", "Payment mix", payment_chart(mix),
         table(mix, ("date", "payment_method", "provider", "orders", "share"))),
        ("top-products", "Top products", products_chart(top), table(top, ("rank", "product", "quantity", "orders"))),
        ("segments", "Customer segments", segments_chart(summary),
         table(summary, ("segment", "customers", "orders", "items"))),
    ]
    html = [f"<!doctype html><html><head><meta charset='utf-8'><title>Order pipeline: the lake</title>"
            f"<style>{STYLE}</style></head><body><h1>Order pipeline: the lake</h1>"
            f"<p class='note'>From Gold's marts on MinIO, {escape(generated_at)}. Cancelled orders count "
            f"only as cancelled. {escape(staleness)}</p>"]
    for number, (anchor, title, figure, rows) in enumerate(sections):
        chart = pio.to_html(figure, include_plotlyjs=number == 0, full_html=False, div_id=f"chart-{anchor}",
                            config={"displayModeBar": False})
        html.append(f"<section id='{anchor}'><h2>{escape(title)}</h2>{chart}{rows}</section>")
    html.append("</body></html>")
    return "".join(html)
