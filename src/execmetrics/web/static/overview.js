// Draws the overview's charts from the data the server rendered into data- attributes.
/* global Chart */
(function () {
  "use strict";
  const styles = getComputedStyle(document.documentElement);
  const colours = {
    new_mrr: "#3d5af1", expansion_mrr: "#22a06b", reactivation_mrr: "#8f63d9",
    contraction_mrr: "#e8a33d", churned_mrr: "#c2413b", mrr_end: styles.getPropertyValue("--ink").trim() || "#1d2433",
  };
  const labels = {
    new_mrr: "New", expansion_mrr: "Expansion", reactivation_mrr: "Reactivation",
    contraction_mrr: "Contraction", churned_mrr: "Churned", mrr_end: "MRR (end of month)",
  };

  let scale = 100;
  function major(minor) { return minor === null ? null : minor / scale; }

  const headline = document.getElementById("headline");
  if (headline) {
    const trends = JSON.parse(headline.dataset.trends);
    headline.querySelectorAll(".card").forEach(function (card) {
      const values = trends[card.dataset.metric] || [];
      new Chart(card.querySelector("canvas"), {
        type: "line",
        data: { labels: values.map(function (_, i) { return i; }),
                datasets: [{ data: values, borderColor: colours.new_mrr, borderWidth: 1.5, pointRadius: 0, tension: 0.3 }] },
        options: { responsive: false, animation: false, events: [],
                   plugins: { legend: { display: false }, tooltip: { enabled: false } },
                   scales: { x: { display: false }, y: { display: false } } },
      });
    });
  }

  const canvas = document.getElementById("movements");
  if (canvas) {
    const chart = JSON.parse(canvas.dataset.chart);
    scale = Math.pow(10, chart.exponent);
    const sign = { contraction_mrr: -1, churned_mrr: -1 };
    const bars = ["new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr", "churned_mrr"].map(function (name) {
      return { type: "bar", label: labels[name], backgroundColor: colours[name], stack: "movements", yAxisID: "y",
               data: chart.series[name].map(function (v) { return major(v) * (sign[name] || 1); }) };
    });
    bars.push({ type: "line", label: labels.mrr_end, borderColor: colours.mrr_end, pointRadius: 2, yAxisID: "mrr",
                data: chart.series.mrr_end.map(major) });
    new Chart(canvas, {
      data: { labels: chart.labels, datasets: bars },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: {
          x: { stacked: true },
          y: { stacked: true, title: { display: true, text: "Movements (" + chart.currency + ")" } },
          mrr: { position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "MRR (" + chart.currency + ")" } },
        },
      },
    });
  }
  document.body.dataset.chartsReady = "true";
})();
