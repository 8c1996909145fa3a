// Command lowbit trains, quantizes, evaluates, exports and simulates
// low-bit neural networks. Each subcommand lives in its own file and
// registers itself on the root command in an init function.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:           "lowbit",
	Short:         "Quantize deep neural networks to 4 bits and fewer",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lowbit:", err)
		os.Exit(1)
	}
}
