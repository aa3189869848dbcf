//go:build linux

package arrowio

import (
	"errors"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames oldpath to newpath and fails with an error
// satisfying errors.Is(err, fs.ErrExist) when newpath exists, even as an
// empty directory (renameat2 RENAME_NOREPLACE). File systems without
// RENAME_NOREPLACE fall back to renameChecked.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) {
		return renameChecked(oldpath, newpath)
	}
	if err != nil {
		return &linkError{"renameat2", oldpath, newpath, err}
	}
	return nil
}
