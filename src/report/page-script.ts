/**
 * The script the report page runs to draw its charts with uPlot (inlined before it). It reads the
 * report from the page's JSON block and draws: the traffic split (stepped, candidate and stable
 * shares), and per gate its recorded values against threshold and baseline, each point coloured
 * by its verdict — dots, not a line, because the audit log records checks sparsely. Every chart
 * shares one time axis (UTC) and carries the decision points as dashed vertical lines. Plain
 * ES2020 for any browser; kept as text here because it runs in the page, not in Node.
 */
export const PAGE_SCRIPT = String.raw`(function () {
  'use strict';
  var report = JSON.parse(document.getElementById('report-data').textContent);
  var sec = function (iso) { return Date.parse(iso) / 1000; };
  var start = sec(report.startedAt);
  var end = Math.max(sec(report.endedAt || report.generatedAt), start + 1);
  var pad = (end - start) * 0.03;
  var utc = function (ts) { return uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'); };
  var KIND_COLOURS = { start: '#6b7280', step: '#2563eb', pause: '#d97706', operator: '#7c3aed', rollback: '#dc2626', promoted: '#16a34a', problem: '#dc2626' };
  var VERDICT_COLOURS = { passed: '#16a34a', failed: '#dc2626', inconclusive: '#d97706', error: '#7c3aed' };
  var marks = report.decisions
    .filter(function (d) { return KIND_COLOURS[d.kind]; })
    .map(function (d) { return { t: sec(d.at), colour: KIND_COLOURS[d.kind] }; });

  // Decision points as dashed vertical lines across the plot area.
  function drawMarks(u) {
    var ctx = u.ctx;
    var top = u.bbox.top, height = u.bbox.height;
    ctx.save();
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
    marks.forEach(function (m) {
      var x = Math.round(u.valToPos(m.t, 'x', true));
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      ctx.strokeStyle = m.colour;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    });
    ctx.restore();
  }

  function widthOf(el) { return Math.max(560, Math.min(1100, el.clientWidth || 900)); }

  function axes(yLabel) {
    return [
      { stroke: '#374151', grid: { stroke: '#e5e7eb' }, values: function (u, ticks) { return ticks.map(function (t) { return new Date(t * 1000).toISOString().slice(11, 19); }); } },
      { stroke: '#374151', grid: { stroke: '#e5e7eb' }, label: yLabel, size: 60 },
    ];
  }

  function fail(el, e) {
    el.textContent = 'This chart could not be drawn: ' + (e && e.message ? e.message : String(e));
    el.className += ' chart-error';
  }

  function drawTraffic() {
    var el = document.getElementById('chart-traffic');
    if (!el) return;
    try {
      var pts = report.traffic.slice();
      var last = pts[pts.length - 1];
      var xs = pts.map(function (p) { return sec(p.at); }).concat([end]);
      var cand = pts.map(function (p) { return p.candidate; }).concat([last.candidate]);
      var stab = pts.map(function (p) { return p.stable; }).concat([last.stable]);
      var stepped = uPlot.paths.stepped({ align: 1 });
      new uPlot({
        width: widthOf(el), height: 260, tzDate: utc, legend: { live: false },
        scales: { x: { time: true, range: [start - pad, end + pad] }, y: { range: [0, 100] } },
        axes: axes('% of requests'),
        series: [
          {},
          { label: report.candidate + ' (candidate) %', stroke: '#2563eb', fill: 'rgba(37, 99, 235, 0.15)', width: 2, paths: stepped, points: { show: false } },
          { label: report.stable + ' (stable) %', stroke: '#16a34a', width: 2, paths: stepped, points: { show: false } },
        ],
        hooks: { draw: [drawMarks] },
      }, [xs, cand, stab], el);
    } catch (e) { fail(el, e); }
  }

  function drawGate(el, series) {
    try {
      var pts = series.points;
      var xs = pts.map(function (p) { return sec(p.at); });
      var col = function (k) { return pts.map(function (p) { return typeof p[k] === 'number' ? p[k] : null; }); };
      var value = col('value'), threshold = col('threshold'), baseline = col('baseline');
      var unit = series.type === 'errorRate' ? '% errors' : series.type === 'latencyP99' ? 'ms (P99)' : 'value';
      // Each measurement as a dot in its verdict's colour.
      var drawVerdicts = function (u) {
        var ctx = u.ctx;
        ctx.save();
        pts.forEach(function (p, i) {
          if (value[i] === null) return;
          ctx.fillStyle = VERDICT_COLOURS[p.verdict] || '#111827';
          ctx.beginPath();
          ctx.arc(u.valToPos(xs[i], 'x', true), u.valToPos(value[i], 'y', true), 5 * devicePixelRatio, 0, 2 * Math.PI);
          ctx.fill();
        });
        ctx.restore();
      };
      new uPlot({
        width: widthOf(el), height: 220, tzDate: utc, legend: { live: false },
        scales: { x: { time: true, range: [start - pad, end + pad] } },
        axes: axes(unit),
        series: [
          {},
          // Recorded checks are sparse (a change of verdict, a rollback's evidence): dots, not a line
          // that would invent the values between them.
          { label: 'measured (' + report.candidate + ')', stroke: '#111827', width: 2, paths: function () { return null; }, points: { show: false } },
          { label: 'threshold', stroke: '#dc2626', width: 1.5, dash: [6, 4], spanGaps: true, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
          { label: 'baseline (' + report.stable + ')', stroke: '#16a34a', width: 1.5, spanGaps: true, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
        ],
        hooks: { draw: [drawMarks, drawVerdicts] },
      }, [xs, value, threshold, baseline], el);
    } catch (e) { fail(el, e); }
  }

  drawTraffic();
  report.gates.forEach(function (g, i) {
    var el = document.getElementById('chart-gate-' + i);
    if (el) drawGate(el, g);
  });
})();
`;
