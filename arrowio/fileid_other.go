//go:build !linux

package arrowio

import "os"

// fileID identifies a file's current state (see fileid_linux.go).
type fileID struct {
	Ino, Size, Ctime int64
}

// statID gives no identity outside Linux: marker prints are not used.
func statID(p string) (fileID, bool, error) {
	_, err := os.Stat(p)
	return fileID{}, false, err
}
