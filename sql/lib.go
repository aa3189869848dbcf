package sql

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
)

// lib holds the macro library, executed in file-name order (fs.ReadDir
// sorts), so a file may use what an earlier-numbered file defines.
//
//go:embed lib/*.sql
var lib embed.FS

// LibFiles lists the library files in load order (for docs and `rljob`).
func LibFiles() ([]string, error) {
	ents, err := fs.ReadDir(lib, "lib")
	if err != nil {
		return nil, fmt.Errorf("sql: read lib: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// LibSource returns the text of one library file, e.g. "30_grpo_advantages.sql".
func LibSource(name string) (string, error) {
	b, err := lib.ReadFile("lib/" + name)
	if err != nil {
		return "", fmt.Errorf("sql: read lib %s: %w", name, err)
	}
	return string(b), nil
}

func (e *Engine) loadLib(ctx context.Context) error {
	names, err := LibFiles()
	if err != nil {
		return err
	}
	for _, name := range names {
		src, err := LibSource(name)
		if err != nil {
			return err
		}
		if _, err := e.conn.ExecContext(ctx, src); err != nil {
			return fmt.Errorf("sql: load lib/%s: %w", name, err)
		}
	}
	return nil
}
