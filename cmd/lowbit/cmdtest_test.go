package main

import (
	"bytes"
	"testing"

	"github.com/spf13/cobra"
)

// execCmd runs a freshly built subcommand with args and returns what it
// printed (stdout and stderr together).
func execCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}
