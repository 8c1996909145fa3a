package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Skipped is a file left out of the report, with the reason.
type Skipped struct {
	Path   string
	Reason string
}

// Report is the set of runs one HTML page shows.
type Report struct {
	Title string
	// Sources are the paths the runs were collected from.
	Sources []string
	Runs    []*Run
	Skipped []Skipped
	seen    map[string]bool
}

// DefaultTitle is the page title when none is given.
const DefaultTitle = "lowbit report"

// New returns an empty report.
func New(title string) *Report {
	if strings.TrimSpace(title) == "" {
		title = DefaultTitle
	}
	return &Report{Title: title, seen: map[string]bool{}}
}

// Load collects the results under paths (see AddPath).
func Load(title string, paths ...string) (*Report, error) {
	r := New(title)
	for _, p := range paths {
		if err := r.AddPath(p); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// AddPath adds a JSON file, or every *.json file under a directory
// (recursively, in lexical order, skipping hidden directories). Files that
// cannot be read or recognized are recorded in Skipped; the error is only
// for a path that does not exist or a directory that cannot be listed.
func (r *Report) AddPath(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("report input: %w", err)
	}
	r.Sources = append(r.Sources, path)
	if !st.IsDir() {
		r.AddFile(path)
		return nil
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == path {
				return fmt.Errorf("report input %s: %w", path, err)
			}
			r.Skipped = append(r.Skipped, Skipped{Path: p, Reason: err.Error()})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != path && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.EqualFold(filepath.Ext(p), ".json") {
			r.AddFile(p)
		}
		return nil
	})
}

// AddFile reads one result file and the command line of NAME.cmd next to
// it. It reports whether the file was recognized; otherwise it is in
// Skipped with the reason.
func (r *Report) AddFile(path string) bool {
	if abs, err := filepath.Abs(path); err == nil {
		if r.seen[abs] {
			return true
		}
		r.seen[abs] = true
	}
	b, err := os.ReadFile(path)
	if err != nil {
		r.Skipped = append(r.Skipped, Skipped{Path: path, Reason: err.Error()})
		return false
	}
	run, err := Parse(b)
	if err != nil {
		r.Skipped = append(r.Skipped, Skipped{Path: path, Reason: err.Error()})
		return false
	}
	run.Path = path
	run.Command = readCommand(strings.TrimSuffix(path, filepath.Ext(path)) + ".cmd")
	r.add(run)
	return true
}

// maxCommand bounds the command line read from a .cmd file.
const maxCommand = 16 << 10

// readCommand returns the trimmed contents of a .cmd file, or "" when
// there is none.
func readCommand(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxCommand))
	return strings.TrimSpace(string(b))
}

// AddResult adds a result held in memory: v is marshalled to JSON and
// recognized like a file named name. command is the command line that
// reproduces it ("" if none).
func (r *Report) AddResult(name, command string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("report %s: %w", name, err)
	}
	run, err := Parse(b)
	if err != nil {
		return fmt.Errorf("report %s: %w", name, err)
	}
	run.Path, run.Command = name, command
	r.add(run)
	return nil
}

func (r *Report) add(run *Run) {
	run.ID = fmt.Sprintf("run-%d", len(r.Runs)+1)
	r.Runs = append(r.Runs, run)
}

// ErrEmpty is returned by Check when a report has neither runs nor
// skipped files.
var ErrEmpty = errors.New("no .json files found")

// Check returns ErrEmpty (naming the sources) when nothing was found.
func (r *Report) Check() error {
	if len(r.Runs) == 0 && len(r.Skipped) == 0 {
		return fmt.Errorf("%w in %s", ErrEmpty, strings.Join(r.Sources, ", "))
	}
	return nil
}
