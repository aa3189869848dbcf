package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/rljob/rljob/report"
)

// armColor is arm i's colour: gonum's dark colours, then a few more.
func armColor(i int) color.Color {
	more := []color.Color{
		color.RGBA{A: 255}, color.RGBA{R: 0, G: 150, B: 160, A: 255}, color.RGBA{R: 128, G: 128, B: 0, A: 255},
		color.RGBA{R: 120, G: 120, B: 120, A: 255}, color.RGBA{R: 140, G: 90, B: 40, A: 255},
		color.RGBA{R: 220, G: 120, B: 0, A: 255}, color.RGBA{R: 90, G: 0, B: 160, A: 255},
	}
	all := append(append([]color.Color(nil), plotutil.DarkColors...), more...)
	return all[i%len(all)]
}

// log2Ticks marks the powers of two of a log2 axis.
type log2Ticks struct{}

func (log2Ticks) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	for k := 1.0; k <= hi*1.0001; k *= 2 {
		if k >= lo*0.9999 {
			t = append(t, plot.Tick{Value: k, Label: strconv.FormatFloat(k, 'f', 0, 64)})
		}
	}
	return t
}

// draw renders the chart as a PNG: per arm a translucent band, its line and
// a marker per point, the legend in a column on the right (report's layout).
func (c chartSpec) draw() ([]byte, error) {
	p := plot.New()
	p.Title.Text = c.title
	p.Title.TextStyle.Font.Size = 12
	p.X.Label.Text, p.Y.Label.Text = c.xlabel, c.ylabel
	p.Add(plotter.NewGrid())
	if c.log2x {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = log2Ticks{}
	}
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	leg.TextStyle.Font.Size = 10
	leg.Padding = vg.Points(2.5)
	for i, b := range c.bands {
		col := armColor(i)
		if len(b.x) > 1 {
			poly := make(plotter.XYs, 0, 2*len(b.x))
			for j := range b.x {
				poly = append(poly, plotter.XY{X: b.x[j], Y: b.hi[j]})
			}
			for j := len(b.x) - 1; j >= 0; j-- {
				poly = append(poly, plotter.XY{X: b.x[j], Y: b.lo[j]})
			}
			pg, err := plotter.NewPolygon(poly)
			if err != nil {
				return nil, fmt.Errorf("band %s: %w", b.arm, err)
			}
			r, g, bl, _ := col.RGBA()
			pg.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(bl >> 8), A: 40}
			pg.LineStyle.Width = 0
			p.Add(pg)
		}
		xys := make(plotter.XYs, len(b.x))
		for j := range b.x {
			xys[j] = plotter.XY{X: b.x[j], Y: b.y[j]}
		}
		l, sc, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("line %s: %w", b.arm, err)
		}
		l.Color, l.Width = col, vg.Points(1.5)
		sc.GlyphStyle.Color, sc.GlyphStyle.Radius, sc.GlyphStyle.Shape = col, vg.Points(2.5), plotutil.Shape(i)
		p.Add(l, sc)
		leg.Add(b.arm, l, sc)
	}
	if p.Y.Max-p.Y.Min < 1e-9 {
		p.Y.Min, p.Y.Max = p.Y.Min-0.05, p.Y.Max+0.05
	}
	p.Y.Min, p.Y.Max = math.Max(0, p.Y.Min), math.Min(1, p.Y.Max)
	img := vgimg.NewWith(vgimg.UseWH(report.Width, report.Height), vgimg.UseDPI(report.DPI))
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -report.LegendWidth, 0, 0))
	leg.Draw(draw.Crop(dc, report.Width-report.LegendWidth+vg.Points(8), 0, 0, -vg.Points(28)))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
