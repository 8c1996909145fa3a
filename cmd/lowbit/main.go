// Command lowbit trains, quantizes, evaluates, exports and simulates
// low-bit neural networks. Each subcommand lives in its own file and
// registers itself on the root command in an init function.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:           "lowbit",
	Short:         "Quantize deep neural networks to 4 bits and fewer",
	SilenceUsage:  true,
	SilenceErrors: true,
}

// cpuProfile is the persistent --cpuprofile flag: every command can write a
// CPU profile of its whole run.
var cpuProfile string

func init() {
	rootCmd.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the command (go tool pprof) to this file")
	rootCmd.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile %s: %w", cpuProfile, err)
		}
		profileFile = f
		return nil
	}
}

// profileFile is the open --cpuprofile file while profiling.
var profileFile *os.File

// stopProfile ends a running --cpuprofile.
func stopProfile() {
	if profileFile != nil {
		pprof.StopCPUProfile()
		profileFile.Close()
		profileFile = nil
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := rootCmd.ExecuteContext(ctx)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lowbit:", err)
		os.Exit(1)
	}
}
