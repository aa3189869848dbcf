package arrowio

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// renameChecked is the portable no-replace rename: it refuses an existing
// newpath up front, and otherwise relies on rename(2) refusing to replace a
// non-empty directory (ENOTEMPTY/EEXIST) — our staging folders always hold
// _commit.json, so two racing committers cannot both win. The window between
// the check and the rename only matters for an empty directory placed at
// newpath by someone else.
func renameChecked(oldpath, newpath string) error {
	if _, err := os.Lstat(newpath); err == nil {
		return &linkError{"rename", oldpath, newpath, fs.ErrExist}
	}
	if err := os.Rename(oldpath, newpath); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return &linkError{"rename", oldpath, newpath, fs.ErrExist}
		}
		return err
	}
	return nil
}

// linkError is os.LinkError whose Unwrap maps "exists" errnos to fs.ErrExist.
type linkError struct {
	op, old, new string
	err          error
}

func (e *linkError) Error() string { return e.op + " " + e.old + " " + e.new + ": " + e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }
func (e *linkError) Is(target error) bool {
	return target == fs.ErrExist && (errors.Is(e.err, syscall.EEXIST) || errors.Is(e.err, syscall.ENOTEMPTY) || errors.Is(e.err, fs.ErrExist))
}
