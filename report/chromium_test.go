package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// chromium returns the path of a headless Chromium, installing Debian's
// chromium package with apt-get when it is missing (scripts/chromium.sh).
// The test skips only where it cannot be installed: no apt-get, or not root.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		t.Skip("chromium is not installed and cannot be (needs root and apt-get): apt-get install chromium")
	}
	out, err := exec.Command("sh", "../scripts/chromium.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("installing chromium (scripts/chromium.sh): %v\n%s", err, out)
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("scripts/chromium.sh succeeded but chromium is not on PATH: %v", err)
	}
	return p
}

// headless runs Chromium on a file with extra flags and returns stdout.
func headless(t *testing.T, bin, page string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir=" + t.TempDir(), "--hide-scrollbars"}, flags...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestChromiumRendersReport: headless Chromium opens the synthetic report
// offline, decodes every chart image (the page's load handler counts the
// images with a natural width into data-charts-rendered), and a screenshot
// of the page is not blank: it has ink and the runs' line colours.
func TestChromiumRendersReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser; skipped under -short")
	}
	bin := chromium(t)
	r, err := buildReport(t, syntheticLake(t), "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Draw(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := WriteHTMLFile(page, r); err != nil {
		t.Fatal(err)
	}

	dom := headless(t, bin, page, "--virtual-time-budget=5000", "--dump-dom")
	m := regexp.MustCompile(`data-charts-rendered="(\d+)"`).FindSubmatch(dom)
	if m == nil {
		t.Fatalf("the page's load handler did not run: no data-charts-rendered in the DOM:\n%.2000s", dom)
	}
	if n, _ := strconv.Atoi(string(m[1])); n != len(wantCharts) {
		t.Errorf("Chromium decoded %d chart images, want %d", n, len(wantCharts))
	}
	if n := len(regexp.MustCompile(`<figure class="chart"`).FindAll(dom, -1)); n != len(wantCharts) {
		t.Errorf("DOM has %d chart figures, want %d", n, len(wantCharts))
	}

	shot := filepath.Join(dir, "shot.png")
	headless(t, bin, page, "--window-size=1000,1400", "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if ink := inkFraction(img); ink < 0.02 {
		t.Errorf("screenshot nearly blank: %.4f of pixels not white", ink)
	}
	// The first chart (reward) holds both runs: their line colours appear.
	for i, col := range runColors[:2] {
		if !hasColor(img, col) {
			t.Errorf("screenshot lacks run %d's colour %v", i, col)
		}
	}
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
