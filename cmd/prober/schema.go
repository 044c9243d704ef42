package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/prober-dev/prober/schema"
)

// cmdSchema prints the JSON Schema of probes.yaml, of flow files or of
// steps files (include:), for an editor's YAML language server.
func cmdSchema(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("schema", flag.ContinueOnError)
	fl.SetOutput(stderr)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	want := strings.Join(schema.Names, "|")
	if fl.NArg() != 1 {
		return usageError{fmt.Errorf("schema: name one schema: %s", want)}
	}
	b := schema.Get(fl.Arg(0))
	if b == nil {
		return usageError{fmt.Errorf("schema: unknown schema %q: want %s", fl.Arg(0), want)}
	}
	_, err := stdout.Write(b)
	return err
}
