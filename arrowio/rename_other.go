//go:build !linux

package arrowio

// renameNoReplace renames oldpath to newpath and fails with an error
// satisfying errors.Is(err, fs.ErrExist) when newpath exists.
func renameNoReplace(oldpath, newpath string) error { return renameChecked(oldpath, newpath) }
