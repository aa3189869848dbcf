package arrowio

import (
	"os"
	"syscall"
)

// fileID identifies a file's current state: inode, size and change time.
// Any write, rename onto it, chmod or link changes the change time, which
// only the kernel sets (a copy made with cp -p keeps the modification time,
// not this one).
type fileID struct {
	Ino, Size, Ctime int64
}

// statID stats p; ok is false where the platform gives no change time.
func statID(p string) (fileID, bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return fileID{}, false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false, nil
	}
	return fileID{Ino: int64(st.Ino), Size: st.Size, Ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec}, true, nil
}
