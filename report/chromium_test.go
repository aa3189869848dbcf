package report

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chromium returns the path of a headless Chromium, or skips the test when
// none is installed (make chromium installs Debian's; a test never does).
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser; skipped under -short")
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed: make chromium (scripts/chromium.sh, as root) installs Debian's chromium")
	return ""
}

// headless runs Chromium on a file with extra flags and returns stdout. The
// flags are those known to work here as root (no sandbox, no GPU, no
// background connections to a closed network).
func headless(t *testing.T, bin, page string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars"}, flags...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, stderr.String())
	}
	return stdout.Bytes()
}

// bodyAttr returns attribute name of the dumped DOM's body ("" if absent).
func bodyAttr(dom []byte, name string) string {
	m := regexp.MustCompile(`<body[^>]*\s` + name + `="([^"]*)"`).FindSubmatch(dom)
	if m == nil {
		return ""
	}
	return html.UnescapeString(string(m[1]))
}

// probeResult is what testdata/probe.js reports.
type probeResult struct {
	Error             string
	Rendered, Flat    int
	Entropy, Reward   drawn
	Hover             hoverResult
	Smoothing         string
	HoverSmoothed     hoverResult
	EntropySmoothed   drawn
	EntropyByRollouts drawn
	RunRows           int
	SamplesShown      int
	SamplesTotal      int
}

type drawn struct {
	Labels []string
	Data   [][]*float64
}

type hoverResult struct {
	Idx   *int
	Shown string
	Text  string
	Rows  [][2]any
}

// column returns the drawn values of series label (nil for a gap).
func (d drawn) column(label string) []*float64 {
	for i, l := range d.Labels {
		if l == label && i > 0 {
			return d.Data[i]
		}
	}
	return nil
}

func (h hoverResult) value(series string) (float64, bool) {
	for _, r := range h.Rows {
		if r[0] == series {
			v, ok := r[1].(float64)
			return v, ok
		}
	}
	return 0, false
}

// TestChromiumReport: headless Chromium opens the synthetic report offline
// with a probe script appended (testdata/probe.js): the charts are drawn
// with the lake's values, hovering the entropy chart at step 5 shows each
// run's value in the tooltip, the smoothing slider redraws the curves as
// the debiased EMA, the rollouts-seen x axis moves a's points to 16 per
// step, and the samples filter narrows the table. A screenshot is not blank.
func TestChromiumReport(t *testing.T) {
	bin := chromium(t)
	r, err := buildReport(t, syntheticLake(t), "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	writeProbedPage(t, r, page, "testdata/probe.js")

	dom := headless(t, bin, page, "--window-size=1200,900", "--virtual-time-budget=5000", "--dump-dom")
	var p probeResult
	if raw := bodyAttr(dom, "data-probe"); raw == "" {
		t.Fatalf("the probe did not run: no data-probe in the DOM:\n%.3000s", dom)
	} else if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatalf("probe output %q: %v", raw, err)
	}
	if p.Error != "" {
		t.Fatalf("probe: %s", p.Error)
	}
	checkProbe(t, r, p)

	shot := filepath.Join(dir, "shot.png")
	headless(t, bin, page, "--window-size=1200,1400", "--virtual-time-budget=5000", "--screenshot="+shot)
	img := readPNG(t, shot)
	if ink := inkFraction(img); ink < 0.02 {
		t.Errorf("screenshot nearly blank: %.4f of pixels not white", ink)
	}
	for i, col := range runColors[:2] {
		if !hasColor(img, col) {
			t.Errorf("screenshot lacks run %d's colour %v", i, col)
		}
	}
}

// writeProbedPage writes r's page with a probe script appended.
func writeProbedPage(t *testing.T, r *Report, page, script string) {
	t.Helper()
	probe, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	html := strings.Replace(buf.String(), "</body>", "<script>"+string(probe)+"</script>\n</body>", 1)
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkProbe(t *testing.T, r *Report, p probeResult) {
	t.Helper()
	charts := 0
	for _, pn := range r.Panels {
		if pn.Flat == "" && pn.Kind != PanelImage {
			charts++
		}
	}
	if p.Rendered != charts || p.Flat == 0 {
		t.Errorf("Chromium drew %d charts (want %d) and %d one-line panels", p.Rendered, charts, p.Flat)
	}
	// The drawn curves are the lake's: entropy of a and b per step.
	for _, run := range []struct {
		name string
		n    int
		f    func(int) float64
	}{{"a", trainSteps, entropyA}, {"b", bSteps, entropyB}} {
		col := p.Entropy.column(run.name)
		if col == nil {
			t.Fatalf("entropy chart has no series %s: %v", run.name, p.Entropy.Labels)
		}
		for s := 1; s <= run.n; s++ {
			if v := col[s-1]; v == nil || math.Abs(*v-run.f(s)) > 1e-9 {
				t.Errorf("entropy of %s at step %d drawn as %v, lake has %g", run.name, s, v, run.f(s))
			}
		}
	}
	if col := p.Reward.column("a"); col == nil || col[0] == nil || *col[0] != 0.375 {
		t.Errorf("reward of a drawn as %v", col)
	}
	// Hover at step 5: the tooltip shows each run's value there.
	if p.Hover.Idx == nil || *p.Hover.Idx != 4 || p.Hover.Shown != "block" || !strings.HasPrefix(p.Hover.Text, "step 5") {
		t.Errorf("hover: %+v", p.Hover)
	}
	if v, ok := p.Hover.value("a"); !ok || math.Abs(v-entropyA(5)) > 1e-9 {
		t.Errorf("tooltip value of a at step 5: %v (%v), want %g; tooltip %q", v, ok, entropyA(5), p.Hover.Text)
	}
	if v, ok := p.Hover.value("b"); !ok || math.Abs(v-entropyB(5)) > 1e-9 {
		t.Errorf("tooltip value of b at step 5: %v, want %g", v, entropyB(5))
	}
	// Smoothing 0.6: the debiased EMA of a's steps 1..5.
	w, last := 0.6, 0.0
	for s := 1; s <= 5; s++ {
		last = last*w + (1-w)*entropyA(s)
	}
	want := last / (1 - math.Pow(w, 5))
	if v, ok := p.HoverSmoothed.value("a"); p.Smoothing != "0.6" || !ok || math.Abs(v-want) > 1e-9 || !strings.Contains(p.HoverSmoothed.Text, "raw 1.5") {
		t.Errorf("smoothed tooltip of a at step 5: %v, want %g; tooltip %q", v, want, p.HoverSmoothed.Text)
	}
	if col := p.EntropySmoothed.column("a"); col == nil || *col[0] != entropyA(1) || *col[4] == entropyA(5) {
		t.Errorf("smoothed curve of a: %v", col)
	}
	// x = train rollouts seen: a saw 16 per step; b has no rollouts.
	x := p.EntropyByRollouts.Data[0]
	if len(x) != trainSteps || *x[0] != 16 || *x[trainSteps-1] != 16*trainSteps || p.EntropyByRollouts.column("b") != nil {
		t.Errorf("entropy against rollouts seen: labels %v x %v", p.EntropyByRollouts.Labels, x)
	}
	if p.RunRows != 2 || p.SamplesTotal != 32 || p.SamplesShown != 8 {
		t.Errorf("run rows %d, samples %d, shown after filter p3 %d (want 2, 32, 8)", p.RunRows, p.SamplesTotal, p.SamplesShown)
	}
}

// TestChromiumLivePage: a --watch page (RefreshS set) shows its live
// control and restores the controls' state a previous load saved
// (sessionStorage), so its periodic reload keeps the reader's view.
func TestChromiumLivePage(t *testing.T) {
	bin := chromium(t)
	r, err := buildReport(t, syntheticLake(t), "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	r.RefreshS = 600
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	probe, err := os.ReadFile("testdata/probe-live.js")
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "live.html")
	html := strings.Replace(buf.String(), "<body", "<script>"+string(probe)+"</script>\n<body", 1)
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := headless(t, bin, page, "--window-size=1200,900", "--dump-dom")
	var got struct {
		X, Smooth string
		B, Live   bool
		Labels    []string
	}
	if err := json.Unmarshal([]byte(bodyAttr(dom, "data-restored")), &got); err != nil {
		t.Fatalf("probe output: %v\n%.2000s", err, dom)
	}
	if got.X != "rollouts" || got.Smooth != "0.5" || got.B || !got.Live || strings.Join(got.Labels, ",") != "train rollouts seen,a" {
		t.Errorf("restored state %+v; want x rollouts, smoothing 0.5, run b hidden (entropy drawn for a only), live control", got)
	}
}

// TestChromiumScale: the page of a 10,000-step run with 50 metrics
// (scaleReport) draws every chart in Chromium. The time it took is
// logged, not asserted (a speed goal is a measurement, and a loaded CI
// machine is no place for it; docs/report.md quotes a quiet run).
func TestChromiumScale(t *testing.T) {
	bin := chromium(t)
	page := filepath.Join(t.TempDir(), "big.html")
	if err := WriteHTMLFile(page, scaleReport()); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(page)
	dom := headless(t, bin, page, "--window-size=1200,900", "--dump-dom")
	ms, err := strconv.Atoi(bodyAttr(dom, "data-render-ms"))
	if err != nil {
		t.Fatalf("page did not finish drawing: %v\n%.2000s", err, dom)
	}
	script, _ := strconv.Atoi(bodyAttr(dom, "data-script-ms"))
	n, _ := strconv.Atoi(bodyAttr(dom, "data-charts-rendered"))
	t.Logf("%.2f MB page: %d charts drawn %d ms after navigation start (script %d ms)", float64(st.Size())/1e6, n, ms, script)
	if n < scaleMetrics {
		t.Errorf("%d charts drawn in %d ms; want all %d", n, ms, scaleMetrics)
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}

// hasColor reports whether some pixel of img is within 24 per channel of c
// (antialiasing blends line edges, not line centres).
func hasColor(img image.Image, c interface{ RGBA() (r, g, b, a uint32) }) bool {
	cr, cg, cb, _ := c.RGBA()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if absDiff(r, cr) < 24<<8 && absDiff(g, cg) < 24<<8 && absDiff(bl, cb) < 24<<8 {
				return true
			}
		}
	}
	return false
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}
