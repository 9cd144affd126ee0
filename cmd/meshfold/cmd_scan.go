package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/store"
)

func init() { registered = append(registered, newScanCommand) }

const (
	// indexDirName is where a node home keeps its goleveldb index.
	indexDirName = "index"
	// localScanDevice authors the versions `meshfold scan` records: the CLI
	// scan runs without the node's identity.
	localScanDevice store.DeviceID = "local"
	// localFolderPrefix starts the folder ID of a folder scanned from the CLI,
	// followed by its absolute path.
	localFolderPrefix = "local:"
	// maxListedProblems is how many per-file errors and case collisions the
	// human summary lists before it only counts them.
	maxListedProblems = 20
)

// ErrNotDir: the path given to `meshfold scan` is missing or not a directory.
var ErrNotDir = errors.New("not a directory")

type scanOptions struct {
	home    string
	json    bool
	workers int
}

func newScanCommand() *cobra.Command {
	var opts scanOptions
	cmd := &cobra.Command{
		Use:   "scan <dir>",
		Short: "Index a folder: walk it, chunk and hash what changed, print a summary",
		Long: `scan indexes a folder in the node home's index: every file is cut into
content-defined chunks and hashed; a second run only re-reads what changed
(size, mtime, inode or mode differ) and records deletions.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd.Context(), opts, args[0], cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.home, "home", "", "node home directory (default $XDG_DATA_HOME/meshfold or ~/.local/share/meshfold)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the summary as JSON")
	cmd.Flags().IntVar(&opts.workers, "workers", 0, "hashing goroutines (default: one per CPU)")
	return cmd
}

// defaultHome is the node home when --home is not given.
func defaultHome() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "meshfold"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the node home: %w", err)
	}
	return filepath.Join(h, ".local", "share", "meshfold"), nil
}

// scanSummary is what `meshfold scan` prints.
type scanSummary struct {
	Folder         string                `json:"folder"`
	Files          int                   `json:"files"`
	Dirs           int                   `json:"dirs"`
	Symlinks       int                   `json:"symlinks"`
	TotalBytes     int64                 `json:"total_bytes"`
	Chunks         int                   `json:"chunks"`
	UniqueChunks   int                   `json:"unique_chunks"`
	New            int                   `json:"new"`
	Changed        int                   `json:"changed"`
	Deleted        int                   `json:"deleted"`
	Unchanged      int                   `json:"unchanged"`
	Ignored        int                   `json:"ignored"`
	BytesHashed    int64                 `json:"bytes_hashed"`
	Seconds        float64               `json:"seconds"`
	MBPerSecond    float64               `json:"mb_per_second"` // bytes hashed / scan time
	Errors         []scanProblem         `json:"errors"`
	CaseCollisions []store.CaseCollision `json:"case_collisions"`
}

type scanProblem struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

func runScan(ctx context.Context, opts scanOptions, dir string, out io.Writer) error {
	root, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("scan %s: %w", dir, err)
	}
	if st, err := os.Stat(root); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("scan %s: %w: it does not exist", dir, ErrNotDir)
		}
		return fmt.Errorf("scan %s: %w", dir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("scan %s: %w", dir, ErrNotDir)
	}
	home := opts.home
	if home == "" {
		if home, err = defaultHome(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("creating node home: %w", err)
	}
	db, err := store.Open(filepath.Join(home, indexDirName))
	if err != nil {
		return fmt.Errorf("opening the index: %w", err)
	}
	defer db.Close()
	idx := db.Folder(localFolderPrefix + root)

	start := time.Now()
	res, err := store.Scan(ctx, store.ScanConfig{Root: root, Device: localScanDevice, Workers: opts.workers}, idx)
	if err != nil {
		return fmt.Errorf("scan %s: %w", dir, err)
	}
	elapsed := time.Since(start)
	sum, err := summarize(idx, root, res, elapsed)
	if err != nil {
		return err
	}
	if opts.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	printSummary(out, sum)
	return nil
}

// summarize counts what the index now holds for the folder.
func summarize(idx *store.FolderIndex, root string, res store.ScanResult, elapsed time.Duration) (scanSummary, error) {
	sum := scanSummary{
		Folder: root, New: res.New, Changed: res.Changed, Deleted: res.Deleted, Unchanged: res.Unchanged,
		Ignored: res.Ignored, BytesHashed: res.BytesHashed, Seconds: elapsed.Seconds(),
		Errors: []scanProblem{}, CaseCollisions: res.CaseCollisions,
	}
	if sum.CaseCollisions == nil {
		sum.CaseCollisions = []store.CaseCollision{}
	}
	if s := elapsed.Seconds(); s > 0 {
		sum.MBPerSecond = float64(res.BytesHashed) / 1e6 / s
	}
	for _, e := range res.Errors {
		sum.Errors = append(sum.Errors, scanProblem{Path: e.Path, Error: e.Err.Error()})
	}
	unique := make(map[string]struct{})
	err := idx.Walk("", func(fi store.FileInfo) error {
		if fi.Deleted {
			return nil
		}
		switch fi.Kind {
		case store.KindFile:
			sum.Files++
			sum.TotalBytes += fi.Size
			sum.Chunks += len(fi.Chunks)
			for _, c := range fi.Chunks {
				unique[c.CID.KeyString()] = struct{}{}
			}
		case store.KindDir:
			sum.Dirs++
		case store.KindSymlink:
			sum.Symlinks++
		}
		return nil
	})
	if err != nil {
		return sum, fmt.Errorf("reading the index: %w", err)
	}
	sum.UniqueChunks = len(unique)
	return sum, nil
}

func printSummary(out io.Writer, s scanSummary) {
	fmt.Fprintf(out, "folder     %s\n", s.Folder)
	fmt.Fprintf(out, "entries    %d files, %d dirs, %d symlinks, %s in files\n", s.Files, s.Dirs, s.Symlinks, humanBytes(s.TotalBytes))
	fmt.Fprintf(out, "chunks     %d (%d unique)\n", s.Chunks, s.UniqueChunks)
	fmt.Fprintf(out, "this scan  %d new, %d changed, %d deleted, %d unchanged, %d ignored\n", s.New, s.Changed, s.Deleted, s.Unchanged, s.Ignored)
	fmt.Fprintf(out, "hashed     %s in %.3fs (%.1f MB/s)\n", humanBytes(s.BytesHashed), s.Seconds, s.MBPerSecond)
	fmt.Fprintf(out, "problems   %d per-file errors, %d case collisions\n", len(s.Errors), len(s.CaseCollisions))
	for i, e := range s.Errors {
		if i == maxListedProblems {
			fmt.Fprintf(out, "  ... and %d more errors (--json lists all)\n", len(s.Errors)-i)
			break
		}
		fmt.Fprintf(out, "  error: %s\n", e.Error)
	}
	for i, c := range s.CaseCollisions {
		if i == maxListedProblems {
			fmt.Fprintf(out, "  ... and %d more collisions (--json lists all)\n", len(s.CaseCollisions)-i)
			break
		}
		fmt.Fprintf(out, "  case collision: %q\n", c.Paths)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
