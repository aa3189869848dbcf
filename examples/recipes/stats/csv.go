package stats

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadCSV reads a CSV whose first line must be header and calls row for
// every later record; an error of row is returned naming its line.
func ReadCSV(r io.Reader, header []string, row func(rec []string) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0 // the header sets it; a wrong one is a csv error naming the line
	head, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if strings.Join(head, ",") != strings.Join(header, ",") {
		return fmt.Errorf("line 1: header %q, want %s", strings.Join(head, ","), strings.Join(header, ","))
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := row(rec); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
}

// ReadFile opens path and parses it with read; errors name the file.
func ReadFile[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	v, err := read(f)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
