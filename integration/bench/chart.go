package bench

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart is the run drawn as an SVG image of two panels: the two-task
// flow's latency against the offered rate, and the Kafka bytes that the
// ForEach runs wrote against their item counts. A part not measured is
// drawn as an empty panel that says so.
func (r *Result) Chart() ([]byte, error) {
	left, err := r.latencyPlot()
	if err != nil {
		return nil, fmt.Errorf("drawing the latency panel: %w", err)
	}
	right, err := r.forEachPlot()
	if err != nil {
		return nil, fmt.Errorf("drawing the ForEach panel: %w", err)
	}
	c := vgsvg.New(13*vg.Inch, 5*vg.Inch)
	pad := 4 * vg.Millimeter
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: 2 * pad, PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, draw.New(c))
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("writing the SVG: %w", err)
	}
	return buf.Bytes(), nil
}

var (
	dashed     = []vg.Length{vg.Points(6), vg.Points(4)}
	chartGray  = color.RGBA{R: 110, G: 110, B: 110, A: 255}
	quantileOf = []struct {
		name  string
		color color.Color
		value func(Quantiles) float64
	}{
		{"p50", color.RGBA{R: 31, G: 119, B: 180, A: 255}, func(q Quantiles) float64 { return q.P50 }},
		{"p95", color.RGBA{R: 255, G: 127, B: 14, A: 255}, func(q Quantiles) float64 { return q.P95 }},
		{"p99", color.RGBA{R: 214, G: 39, B: 40, A: 255}, func(q Quantiles) float64 { return q.P99 }},
	}
)

// latencyPlot is p50/p95/p99 against the offered rate, on a log scale,
// with the p99 limit and the five-If flow's quantiles as separate points.
func (r *Result) latencyPlot() (*plot.Plot, error) {
	p := newPanel("Two-task flow: latency vs rate — "+r.Name, "offered rate (executions/min)", "latency (ms)")
	if len(r.Rates) == 0 && r.Ifs == nil {
		return p, notMeasured(p)
	}
	drawn, ifsDrawn := 0, false
	for _, q := range quantileOf {
		var xys plotter.XYs
		for _, run := range r.Rates {
			if v := q.value(run.Latency); positive(v) {
				xys = append(xys, plotter.XY{X: float64(run.Rate), Y: v})
			}
		}
		if len(xys) > 0 {
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				return nil, err
			}
			line.Color, points.Color = q.color, q.color
			p.Add(line, points)
			p.Legend.Add(q.name, line, points)
			drawn++
		}
		if r.Ifs != nil && positive(q.value(r.Ifs.Latency)) {
			ifs, err := ifsPoint(float64(r.Ifs.Rate), q.value(r.Ifs.Latency), q.color)
			if err != nil {
				return nil, err
			}
			p.Add(ifs)
			drawn, ifsDrawn = drawn+1, true
		}
	}
	if ifsDrawn {
		thumb, err := ifsPoint(0, 0, chartGray)
		if err != nil {
			return nil, err
		}
		p.Legend.Add("five If tasks (p50, p95, p99)", thumb)
	}
	if limit := r.Settings.P99LimitMs; positive(limit) {
		line := plotter.NewFunction(func(float64) float64 { return limit })
		line.Color, line.Dashes = chartGray, dashed
		p.Add(line)
		p.Y.Min, p.Y.Max = math.Min(p.Y.Min, limit), math.Max(p.Y.Max, limit)
		p.Legend.Add(fmt.Sprintf("p99 limit (%g ms)", limit), line)
		drawn++
	}
	if drawn > 0 { // a log scale needs values above zero
		p.Y.Scale, p.Y.Tick.Marker, p.Y.AutoRescale = plot.LogScale{}, plot.LogTicks{Prec: -1}, true
	}
	return p, nil
}

// forEachPlot is the Kafka bytes of each ForEach run against its items,
// with the straight line that linear growth from the smallest run gives.
func (r *Result) forEachPlot() (*plot.Plot, error) {
	p := newPanel("ForEach: bytes written to Kafka", "items", "Kafka bytes written (KiB)")
	var xys plotter.XYs
	var smallest *ForEachRun
	maxItems := 0
	for i, run := range r.ForEach {
		if run.Items <= 0 {
			continue
		}
		xys = append(xys, plotter.XY{X: float64(run.Items), Y: float64(run.KafkaBytes) / 1024})
		if smallest == nil || run.Items < smallest.Items {
			smallest = &r.ForEach[i]
		}
		maxItems = max(maxItems, run.Items)
	}
	if len(xys) == 0 {
		return p, notMeasured(p)
	}
	if perItem := bytesPerItem(*smallest); positive(perItem) {
		top := float64(maxItems) * 1.05
		line, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: top, Y: top * perItem / 1024}})
		if err != nil {
			return nil, err
		}
		line.Color, line.Dashes = chartGray, dashed
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("linear growth: %.0f B/item, as at %d items", perItem, smallest.Items), line)
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return nil, err
	}
	line.Color, points.Color = quantileOf[0].color, quantileOf[0].color
	points.Radius = vg.Points(3)
	p.Add(line, points)
	p.Legend.Add("measured", line, points)
	p.Y.Tick.Marker = plot.TickerFunc(plainTicks)
	return p, nil
}

// ifsPoint marks a quantile of the five-If flow.
func ifsPoint(x, y float64, c color.Color) (*plotter.Scatter, error) {
	s, err := plotter.NewScatter(plotter.XYs{{X: x, Y: y}})
	if err != nil {
		return nil, err
	}
	s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(4), Shape: draw.PyramidGlyph{}}
	return s, nil
}

func newPanel(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = 2*vg.Millimeter, -2*vg.Millimeter
	p.Add(plotter.NewGrid())
	return p
}

// notMeasured turns p into an empty panel that says it was not measured.
func notMeasured(p *plot.Plot) error {
	note, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: 0.5, Y: 0.5}}, Labels: []string{"not measured"}})
	if err != nil {
		return err
	}
	note.TextStyle[0].XAlign, note.TextStyle[0].YAlign = draw.XCenter, draw.YCenter
	p.Add(note)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.HideAxes()
	return nil
}

// plainTicks are the default ticks labelled without trailing zeros
// ("7500", not "7500.00").
func plainTicks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(math.Round(t.Value*1000)/1000, 'f', -1, 64)
		}
	}
	return ticks
}

func positive(v float64) bool { return v > 0 && !math.IsInf(v, 1) }
