// The flash sale's figures over time: percentiles, per-second counts and sparklines.

import { $ } from "./dom.js";

const CHART_POINTS = 120;

export function percentile(values, p) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, rank)]);
}

export function countSince(times, since) {
  let count = 0;
  for (let i = times.length - 1; i >= 0 && times[i] > since; i -= 1) count += 1;
  return count;
}

export function pushPoint(series, value) {
  series.push(value);
  if (series.length > CHART_POINTS) series.shift();
}

export function drawCharts(sale) {
  drawSpark("sale-chart-rate", sale.series.rate, "Orders per second");
  drawSpark("sale-chart-stock", sale.series.stock, "Stock");
  drawSpark("sale-chart-lag", sale.series.lag, "Settlement lag p50 in ms");
  drawSpark("sale-chart-refusals", sale.series.refusals, "LOCK_CONFLICT and INSUFFICIENT_STOCK refusals per second");
}

/**
 * A sparkline: the series scaled into the 120 x 36 viewBox, newest on the right. The x axis
 * grows with the sale (at least 20 points, at most CHART_POINTS), so a short sale fills the chart.
 */
function drawSpark(id, series, label) {
  const svg = $(id);
  const max = Math.max(1, ...series);
  const width = Math.max(20, series.length);
  const step = 120 / (width - 1);
  const offset = width - series.length;
  const points = series
    .map((value, i) => `${((offset + i) * step).toFixed(1)},${(34 - (value / max) * 32).toFixed(1)}`)
    .join(" ");
  let line = svg.querySelector("polyline");
  if (!line) {
    line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    svg.append(line);
  }
  line.setAttribute("points", points);
  const latest = series.length ? series[series.length - 1] : 0;
  svg.querySelector("title").textContent = `${label}: now ${latest}, highest ${Math.max(0, ...series)}`;
}
