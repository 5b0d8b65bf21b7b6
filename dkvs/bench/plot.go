package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Plot size: 9 by 5.5 inches at the PNG renderer's 96 dots per inch
// (864 by 528 pixels).
const (
	PlotWidth  = 9 * vg.Inch
	PlotHeight = 5.5 * vg.Inch
)

// lineColors are the colors of get, put, delete and all.
var lineColors = [...]color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // get: blue
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // put: red
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // delete: green
	{R: 0x30, G: 0x30, B: 0x30, A: 0xff}, // all: dark grey
}

// WritePlot draws the latency distribution of the measured phase (of the
// load with --load-only) as a PNG: one curve per operation type and one
// for all, latency (ms) against percentile on a log scale of 1/(1-p), the
// usual HDR histogram plot, where 90%, 99%, 99.9% ... are evenly spaced.
func WritePlot(w io.Writer, r *Result) error {
	ph := r.Run
	if ph == nil {
		ph = r.Load
	}
	if ph == nil {
		return fmt.Errorf("plot: no phase ran")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("dkvs bench, %s phase: latency by percentile\n%s, N=%d R=%d W=%d",
		ph.Name, configOf(r.Workload), r.Workload.N, r.Workload.R, r.Workload.W)
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = percentileTicks{}
	p.Y.Min = 0
	p.Y.Tick.Marker = latencyTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Add(plotter.NewGrid())

	maxX := 10.0 // at least up to the 90th percentile, for a readable axis
	maxY := 0.0
	drawn := 0
	for i, op := range []OpType{Get, Put, Delete, numOpTypes} {
		s := ph.Op(op)
		if len(s.Curve) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(s.Curve))
		for j, c := range s.Curve {
			pts[j].X = 1 / (1 - c.Percentile/100)
			pts[j].Y = c.LatencyUS / 1e3
			maxX = math.Max(maxX, pts[j].X)
			maxY = math.Max(maxY, pts[j].Y)
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		line.Color = lineColors[i]
		line.Width = vg.Points(1.5)
		if op == numOpTypes {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		name := "all"
		if op != numOpTypes {
			name = op.String()
		}
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s: %d answered, p50 %s, p99 %s, max %s", name, s.Answered(),
			FormatLatency(s.Latency.P50), FormatLatency(s.Latency.P99), FormatLatency(s.Latency.Max)), line)
		drawn++
	}
	if drawn == 0 {
		// Nothing was answered: an empty chart with its axes says so.
		p.Title.Text += "\n(no operation answered)"
	}
	p.X.Min = 1
	if maxY > 0 {
		// Room above the highest curve for the legend.
		p.Y.Max = maxY * 1.25
	}
	p.X.Max = math.Pow(10, math.Ceil(math.Log10(maxX)))
	wt, err := p.WriterTo(PlotWidth, PlotHeight, "png")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	_, err = wt.WriteTo(w)
	return err
}

// WritePlotFile writes the plot to a PNG file.
func WritePlotFile(path string, r *Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WritePlot(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// percentileTicks labels the x axis, 1/(1-p), with p: a major tick at
// every power of ten (0%, 90%, 99%, 99.9% ...) and minor ticks between.
type percentileTicks struct{}

// Ticks implements plot.Ticker.
func (percentileTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for d := 0; math.Pow(10, float64(d)) <= max*1.0001; d++ {
		x := math.Pow(10, float64(d))
		if x >= min*0.9999 {
			ticks = append(ticks, plot.Tick{Value: x, Label: percentLabel(d)})
		}
		for m := 2; m < 10; m++ {
			if v := x * float64(m); v >= min && v <= max {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
	}
	return ticks
}

// percentLabel is the percentile at 1/(1-p) = 10^d: "0%", "90%", "99%",
// "99.9%" ...
func percentLabel(d int) string {
	switch {
	case d <= 0:
		return "0%"
	case d == 1:
		return "90%"
	case d == 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", d-2) + "%"
}

// latencyTicks labels the latency axis with 4 to 10 round values (steps
// of 1, 2 or 5 times a power of ten); gonum's default gives as few as
// three on this axis.
type latencyTicks struct{}

// Ticks implements plot.Ticker.
func (latencyTicks) Ticks(min, max float64) []plot.Tick {
	if !(max > min) {
		return []plot.Tick{{Value: min, Label: strconv.FormatFloat(min, 'g', 4, 64)}}
	}
	step := niceStep((max - min) / 10)
	var ticks []plot.Tick
	for v := math.Ceil(min/step) * step; v <= max+step*1e-9; v += step {
		v = math.Round(v/step) * step // no drift from repeated addition
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 4, 64)})
		if half := v + step/2; half < max {
			ticks = append(ticks, plot.Tick{Value: half}) // a minor tick
		}
	}
	return ticks
}

// niceStep returns the smallest of 1, 2 or 5 times a power of ten that is
// at least raw.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
