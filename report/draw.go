package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Image geometry: every chart is Width × Height at DPI, the legend in a
// column of LegendWidth on the right so that it never hides a curve.
const (
	Width       = 9 * vg.Inch
	Height      = 3.75 * vg.Inch
	LegendWidth = 2.3 * vg.Inch
	DPI         = 96
)

// maxGlyphPoints: series with at most this many points also get a marker
// per point (an eval with two checkpoints is two dots and a segment).
const maxGlyphPoints = 30

// runColors are the colours of the runs, in --run order (wrapping): gonum's
// seven dark colours, then five more, so that up to 12 runs (the recipes of
// examples/recipes/chart) each get their own.
var runColors = append(append([]color.Color(nil), plotutil.DarkColors...),
	color.RGBA{A: 255},                         // black
	color.RGBA{R: 0, G: 150, B: 160, A: 255},   // teal
	color.RGBA{R: 128, G: 128, B: 0, A: 255},   // olive
	color.RGBA{R: 120, G: 120, B: 120, A: 255}, // grey
	color.RGBA{R: 140, G: 90, B: 40, A: 255},   // brown
)

// Draw renders every chart of r into its PNG field.
func (r *Report) Draw() error {
	for _, c := range r.Charts {
		b, err := c.draw(r.Runs)
		if err != nil {
			return fmt.Errorf("report: draw chart %s: %w", c.ID, err)
		}
		c.PNG = b
	}
	return nil
}

// draw renders c as a PNG: one colour per run (its index in runs), one dash
// pattern per series name, a legend column on the right listing every series
// and every run without data.
func (c *Chart) draw(runs []string) ([]byte, error) {
	if c.Kind == KindHeatmap && len(c.Series) > 0 {
		return c.drawHeatmap()
	}
	p := plot.New()
	p.Title.Text = c.Title
	p.Title.TextStyle.Font.Size = 13
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	p.Add(plotter.NewGrid())

	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	leg.TextStyle.Font.Size = 10
	leg.Padding = vg.Points(2.5)

	runIdx := map[string]int{}
	for i, r := range runs {
		runIdx[r] = i
	}
	nameIdx := map[string]int{}
	for _, m := range c.Metrics { // a metric keeps its dashes whichever runs log it
		nameIdx[m] = len(nameIdx)
	}
	for _, s := range c.Series {
		if _, ok := nameIdx[s.Name]; !ok {
			nameIdx[s.Name] = len(nameIdx)
		}
	}
	multiName := len(nameIdx) > 1
	for _, s := range c.Series {
		xys := make(plotter.XYs, len(s.X))
		for i := range s.X {
			xys[i].X, xys[i].Y = s.X[i], s.Y[i]
		}
		col := runColors[runIdx[s.Run]%len(runColors)]
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("series %s/%s: %w", s.Run, s.Name, err)
		}
		l.Color = col
		l.Width = vg.Points(1.5)
		l.Dashes = plotutil.Dashes(nameIdx[s.Name])
		p.Add(l)
		thumbs := []plot.Thumbnailer{l}
		if len(xys) <= maxGlyphPoints {
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return nil, fmt.Errorf("series %s/%s: %w", s.Run, s.Name, err)
			}
			sc.GlyphStyle.Color = col
			sc.GlyphStyle.Radius = vg.Points(2.5)
			sc.GlyphStyle.Shape = plotutil.Shape(nameIdx[s.Name])
			p.Add(sc)
			thumbs = append(thumbs, sc)
		}
		label := s.Run
		if multiName {
			label = s.Run + " " + s.Name
		}
		leg.Add(shorten(label, 34), thumbs...)
	}
	for _, r := range runs {
		if !c.hasRun(r) {
			leg.Add(shorten(r+": no data", 34), noData{runColors[runIdx[r]%len(runColors)]})
		}
	}
	if len(c.Series) == 0 {
		// Empty axes with a centred label instead of an error: the report
		// keeps the same charts whatever the runs logged.
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: 0.5, Y: 0.5}}, Labels: []string{"no data"}})
		if err != nil {
			return nil, err
		}
		lbl.TextStyle[0].XAlign = text.XCenter
		lbl.TextStyle[0].YAlign = text.YCenter
		lbl.TextStyle[0].Font = font.From(plot.DefaultFont, 16)
		lbl.TextStyle[0].Color = color.Gray{Y: 110}
		p.Add(lbl)
	} else {
		padFlat(p)
	}

	return render(p, leg)
}

// render draws p with leg in the column on its right and encodes a PNG.
func render(p *plot.Plot, leg plot.Legend) ([]byte, error) {
	img := vgimg.NewWith(vgimg.UseWH(Width, Height), vgimg.UseDPI(DPI))
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -LegendWidth, 0, 0))
	leg.Draw(draw.Crop(dc, Width-LegendWidth+vg.Points(8), 0, 0, -vg.Points(28)))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c *Chart) hasRun(run string) bool {
	for _, s := range c.Series {
		if s.Run == run {
			return true
		}
	}
	return false
}

// padFlat widens a degenerate Y range (a constant metric such as kl_loss
// = 0 without a KL term) so that the line is drawn mid-height with ticks.
func padFlat(p *plot.Plot) {
	if p.Y.Max-p.Y.Min > 1e-12*math.Max(1, math.Abs(p.Y.Max)) {
		return
	}
	d := math.Max(math.Abs(p.Y.Max)*0.1, 0.5)
	p.Y.Min -= d
	p.Y.Max += d
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// noData is the legend thumbnail of a run without data: a hollow box in
// the run's colour.
type noData struct{ col color.Color }

func (n noData) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{
		{X: c.Min.X + 2, Y: c.Min.Y + 2}, {X: c.Max.X - 2, Y: c.Min.Y + 2},
		{X: c.Max.X - 2, Y: c.Max.Y - 2}, {X: c.Min.X + 2, Y: c.Max.Y - 2}, {X: c.Min.X + 2, Y: c.Min.Y + 2},
	}
	c.StrokeLines(draw.LineStyle{Color: n.col, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(2), vg.Points(2)}}, pts)
}

// grid is a heat map's data: column i is step xs[i], row j is series j.
type grid struct {
	xs []float64
	z  [][]float64 // z[row][col]
}

func (g grid) Dims() (c, r int)   { return len(g.xs), len(g.z) }
func (g grid) Z(c, r int) float64 { return g.z[r][c] }
func (g grid) X(c int) float64    { return g.xs[c] }
func (g grid) Y(r int) float64    { return float64(r) }
func (g grid) Min() float64       { return 0 }
func (g grid) Max() float64       { return 1 }

// shades is a white-to-navy palette for shares in [0, 1].
type shades int

func (n shades) Colors() []color.Color {
	cs := make([]color.Color, n)
	for i := range cs {
		t := float64(i) / float64(n-1)
		cs[i] = color.RGBA{R: uint8(255 - t*(255-8)), G: uint8(255 - t*(255-48)), B: uint8(255 - t*(255-107)), A: 255}
	}
	return cs
}

// drawHeatmap renders a KindHeatmap chart: one row per series (bottom to
// top), one column per step, colour = value in [0, 1].
func (c *Chart) drawHeatmap() ([]byte, error) {
	p := plot.New()
	p.Title.Text = c.Title
	p.Title.TextStyle.Font.Size = 13
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	g := grid{xs: c.Series[0].X}
	var ticks []plot.Tick
	for j, s := range c.Series {
		if len(s.X) != len(g.xs) {
			return nil, fmt.Errorf("heat map row %s has %d columns, want %d", s.Name, len(s.X), len(g.xs))
		}
		g.z = append(g.z, s.Y)
		ticks = append(ticks, plot.Tick{Value: float64(j), Label: s.Name})
	}
	pal := shades(32)
	h := plotter.NewHeatMap(g, pal)
	p.Add(h)
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Label.Font.Size = 9

	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	leg.TextStyle.Font.Size = 10
	leg.Padding = vg.Points(2.5)
	leg.Add("share of the step's prompts")
	cols := pal.Colors()
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		leg.Add(fmt.Sprintf("%.2f", v), swatch{cols[int(v*float64(len(cols)-1)+0.5)]})
	}
	return render(p, leg)
}

// swatch is a legend thumbnail filled with one colour, outlined in grey.
type swatch struct{ col color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	r := vg.Rectangle{Min: vg.Point{X: c.Min.X + 2, Y: c.Min.Y + 1}, Max: vg.Point{X: c.Max.X - 2, Y: c.Max.Y - 1}}
	c.FillPolygon(s.col, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}})
	c.StrokeLines(draw.LineStyle{Color: color.Gray{Y: 150}, Width: vg.Points(0.5)},
		[]vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}, r.Min})
}
