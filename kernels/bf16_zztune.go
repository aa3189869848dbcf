package kernels

import (
	"os"
	"strconv"
)

func init() {
	for name, p := range map[string]*int{"BF16_RB": &bf16RowBlock, "BF16_PG": &bf16PanelGroup, "BF16_KC": &bf16KC, "BF16_SK": &bf16ShortK} {
		if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
			*p = v
		}
	}
}
