package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
)

// DataElementID is the id of the <script type="application/json"> element
// that holds the report's series (Report as JSON, without the images), so
// that a test, or a reader who wants the numbers, gets them from the HTML.
const DataElementID = "rljob-report-data"

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rljob report: {{range $i, $r := .R.Runs}}{{if $i}}, {{end}}{{$r}}{{end}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 900px; color: #222; background: #fff; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
p.meta { color: #555; margin-top: 0; font-size: 0.9em; }
figure.chart { margin: 1.2em 0; border-top: 1px solid #ddd; padding-top: 0.6em; }
figure.chart img { width: 100%; height: auto; display: block; }
figcaption { font-size: 0.85em; color: #444; }
figcaption .note { color: #a33; }
nav a { margin-right: 0.8em; font-size: 0.9em; }
</style>
</head>
<body data-charts="{{len .R.Charts}}">
<h1>rljob report: {{range $i, $r := .R.Runs}}{{if $i}}, {{end}}{{$r}}{{end}}</h1>
<p class="meta">lake {{.R.Lake}} · generated {{.R.Generated.Format "2006-01-02 15:04:05 UTC"}} · {{len .R.Charts}} charts</p>
<nav>{{range .R.Charts}}<a href="#chart-{{.ID}}">{{.ID}}</a>{{end}}</nav>
{{range $i, $c := .R.Charts}}<figure class="chart" id="chart-{{$c.ID}}" data-chart="{{$c.ID}}" data-series="{{len $c.Series}}">
<img alt="{{$c.Title}}" src="{{index $.Images $i}}">
<figcaption>{{$c.Title}}{{with $c.Metrics}} · metrics {{range $j, $m := .}}{{if $j}}, {{end}}<code>{{$m}}</code>{{end}}{{end}} · {{len $c.Series}} series{{range $c.Notes}}<br><span class="note">{{.}}</span>{{end}}</figcaption>
</figure>
{{end}}<script type="application/json" id="{{.DataID}}">{{.Data}}</script>
<script>
// Marks the body with how many chart images the browser decoded (a test
// reads data-charts-rendered from headless Chromium's DOM).
window.addEventListener("load", function () {
  var n = 0;
  document.querySelectorAll("figure.chart img").forEach(function (img) {
    if (img.complete && img.naturalWidth > 0) { n++; }
  });
  document.body.setAttribute("data-charts-rendered", String(n));
});
</script>
</body>
</html>
`))

// WriteHTML writes r (after Draw) as one self-contained HTML page: every
// chart a base64 PNG, the series as JSON in the element DataElementID.
func WriteHTML(w io.Writer, r *Report) error {
	imgs := make([]template.URL, len(r.Charts))
	for i, c := range r.Charts {
		if len(c.PNG) == 0 {
			return fmt.Errorf("report: chart %s not drawn (call Draw first)", c.ID)
		}
		imgs[i] = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(c.PNG))
	}
	// json.Marshal escapes <, > and &, so the data cannot close the script
	// element; template.JS inserts it as is.
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("report: encode data: %w", err)
	}
	return page.Execute(w, struct {
		R      *Report
		Images []template.URL
		DataID string
		Data   template.JS
	}{r, imgs, DataElementID, template.JS(data)})
}

// WritePNGs writes each chart (after Draw) to dir as NN-<id>.png, creating
// dir, and returns the paths written.
func WritePNGs(dir string, r *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var paths []string
	for i, c := range r.Charts {
		if len(c.PNG) == 0 {
			return nil, fmt.Errorf("report: chart %s not drawn (call Draw first)", c.ID)
		}
		p := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", i+1, c.ID))
		if err := writeFileAtomic(p, c.PNG); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// writeFileAtomic writes b to p through a temporary file in p's folder,
// fsynced and renamed, so a reader never sees half a file.
func writeFileAtomic(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp*")
	if err != nil {
		return fmt.Errorf("report: write %s: %w", p, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("report: write %s: %w", p, err)
	}
	return nil
}

// WriteHTMLFile writes r's HTML to path atomically.
func WriteHTMLFile(path string, r *Report) error {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes())
}
