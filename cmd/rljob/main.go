// Command rljob runs RL post-training of language models as batch jobs over a data lake.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "rljob: under construction")
	os.Exit(1)
}
