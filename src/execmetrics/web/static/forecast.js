// Draws the forecast page's fan chart from the data the server rendered into data-chart: the
// history line, the forecast line, and the 95% and 80% intervals as shaded bands.
/* global Chart */
(function () {
  "use strict";
  const styles = getComputedStyle(document.documentElement);
  const ink = styles.getPropertyValue("--ink").trim() || "#1d2433";
  const accent = styles.getPropertyValue("--accent").trim() || "#3d5af1";
  const muted = styles.getPropertyValue("--muted").trim() || "#6b7385";
  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

  // A band is two datasets: its lower edge, unfilled and left out of the legend and tooltip,
  // then its upper edge filled down to the dataset before it ("-1"), the lower edge.
  function edge(label, data) {
    return { label: label, data: data, edge: true, fill: false, borderWidth: 0, pointRadius: 0,
             pointHitRadius: 0 };
  }
  function band(label, upper, lower, colour) {
    return { label: label, data: upper, lower: lower, fill: "-1", backgroundColor: colour,
             borderColor: colour, borderWidth: 0, pointRadius: 0 };
  }

  const canvas = document.getElementById("fan");
  if (canvas) {
    const chart = JSON.parse(canvas.dataset.chart);
    new Chart(canvas, {
      type: "line",
      data: {
        labels: chart.labels,
        datasets: [
          { label: "History", data: chart.history, fill: false, borderColor: ink,
            backgroundColor: ink, borderWidth: 2, pointRadius: 1.5 },
          { label: "Forecast", data: chart.forecast, fill: false, borderColor: accent,
            backgroundColor: accent, borderWidth: 2, borderDash: [6, 4], pointRadius: 1.5 },
          edge("95% lower", chart.lower_95),
          band("95% interval", chart.upper_95, chart.lower_95, "rgba(61, 90, 241, 0.14)"),
          edge("80% lower", chart.lower_80),
          band("80% interval", chart.upper_80, chart.lower_80, "rgba(61, 90, 241, 0.28)"),
        ],
      },
      options: {
        animation: false, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { labels: { filter: function (item, data) { return !data.datasets[item.datasetIndex].edge; } } },
          tooltip: {
            filter: function (item) { return !item.dataset.edge && item.raw !== null; },
            callbacks: {
              label: function (item) {
                const lower = item.dataset.lower;
                if (lower) {
                  return item.dataset.label + ": " + number.format(lower[item.dataIndex]) + " to " +
                    number.format(item.raw);
                }
                return item.dataset.label + ": " + number.format(item.raw);
              },
            },
          },
        },
        scales: {
          x: { ticks: { color: muted, maxRotation: 0, autoSkipPadding: 12 }, grid: { display: false } },
          y: { ticks: { color: muted }, title: { display: true, text: chart.axis } },
        },
      },
    });
  }
  document.body.dataset.chartsReady = "true";
})();
