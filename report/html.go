package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
)

// DataElementID is the id of the <script type="application/json"> element
// that holds the report (Report as JSON: panels, series, axes, run table,
// samples), which the page's script draws and a test or a reader can read.
const DataElementID = "rljob-report-data"

// The page's assets, embedded in the binary: uPlot (vendored from npm, see
// assets/uplot/README.md) with its licence, and the page's own script and
// style.
var (
	//go:embed assets/uplot/uPlot.iife.min.js
	uplotJS string
	//go:embed assets/uplot/uPlot.min.css
	uplotCSS string
	//go:embed assets/uplot/LICENSE
	uplotLicense string
	//go:embed assets/app.js
	appJS string
	//go:embed assets/app.css
	appCSS string
)

// UPlotVersion is the version of the vendored uPlot.
const UPlotVersion = "1.6.32"

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rljob report: {{range $i, $r := .R.Runs}}{{if $i}}, {{end}}{{$r}}{{end}}</title>
<style>{{.UPlotCSS}}</style>
<style>{{.AppCSS}}</style>
</head>
<body data-panels="{{len .R.Panels}}">
<header>
<h1>rljob report: {{range $i, $r := .R.Runs}}{{if $i}}, {{end}}{{$r}}{{end}}</h1>
<p class="meta">lake <code>{{.R.Lake}}</code> · generated {{.R.Generated.Format "2006-01-02 15:04:05 UTC"}} · {{len .R.Panels}} panels</p>
{{with .R.Message}}<p class="message" id="message">{{.}}</p>{{end}}
</header>
<noscript><p class="message">This page draws its charts with JavaScript; the numbers are in the JSON element #{{.DataID}}.</p></noscript>
<div id="controls"></div>
<nav id="toc"></nav>
<main id="panels"></main>
<section id="runs-section"><h2>Runs</h2><div id="runs"></div></section>
<section id="samples-section"><h2>Samples</h2><div id="samples"></div></section>
<footer><details><summary>Charts drawn with uPlot {{.UPlotVersion}} (MIT licence)</summary><pre>{{.UPlotLicense}}</pre></details></footer>
<script type="application/json" id="{{.DataID}}">{{.Data}}</script>
<script>{{.UPlotJS}}</script>
<script>{{.AppJS}}</script>
</body>
</html>
`))

// WriteHTML writes r as one self-contained interactive page: the report as
// JSON in the element DataElementID, uPlot and the page's script inline, the
// curriculum heat maps as base64 PNGs (drawn here when Draw was not called).
func WriteHTML(w io.Writer, r *Report) error {
	if err := r.attachImages(); err != nil {
		return err
	}
	// json.Marshal escapes <, > and &, so the data cannot close the script
	// element; template.JS inserts it as is.
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("report: encode data: %w", err)
	}
	return page.Execute(w, struct {
		R                          *Report
		DataID                     string
		Data, UPlotJS, AppJS       template.JS
		UPlotCSS, AppCSS           template.CSS
		UPlotLicense, UPlotVersion string
	}{r, DataElementID, template.JS(data), template.JS(uplotJS), template.JS(appJS),
		template.CSS(uplotCSS), template.CSS(appCSS), uplotLicense, UPlotVersion})
}

// attachImages sets the Image of each image panel from its chart's PNG.
func (r *Report) attachImages() error {
	charts := map[string]*Chart{}
	for _, c := range r.Charts {
		charts[c.ID] = c
	}
	for _, p := range r.Panels {
		c := charts[p.ID]
		if p.Kind != PanelImage || c == nil {
			continue
		}
		if len(c.PNG) == 0 {
			b, err := c.draw(r.Runs)
			if err != nil {
				return fmt.Errorf("report: draw chart %s: %w", c.ID, err)
			}
			c.PNG = b
		}
		p.Image = "data:image/png;base64," + base64.StdEncoding.EncodeToString(c.PNG)
	}
	return nil
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
