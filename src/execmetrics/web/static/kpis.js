// Draws each KPI card's trend line from the periods the server rendered into data-trend.
/* global Chart */
(function () {
  "use strict";
  const styles = getComputedStyle(document.documentElement);
  const line = styles.getPropertyValue("--accent").trim() || "#3d5af1";
  const muted = styles.getPropertyValue("--muted").trim() || "#6b7385";

  function draw(canvas) {
    const trend = JSON.parse(canvas.dataset.trend);
    if (!trend.values.some(function (value) { return value !== null; })) {
      canvas.parentElement.textContent = "No history yet.";
      return;
    }
    new Chart(canvas, {
      type: "line",
      data: {
        labels: trend.labels,
        datasets: [{ data: trend.values, borderColor: line, backgroundColor: line, borderWidth: 2,
                     pointRadius: 2, tension: 0.25 }],
      },
      options: {
        animation: false, maintainAspectRatio: false,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (item) { return trend.texts[item.dataIndex]; } } },
        },
        scales: {
          x: { ticks: { color: muted, maxTicksLimit: 4, maxRotation: 0 }, grid: { display: false } },
          y: { ticks: { color: muted, maxTicksLimit: 3 } },
        },
      },
    });
  }

  document.querySelectorAll("canvas.trend[data-trend]").forEach(draw);
  document.body.dataset.chartsReady = "true";
})();
