package main

// Rendering of folder and path states for 'meshfold status'. A folder line is
// its state (symbol, colour, label), its ID and root, then details; each
// detail is one function of folderDetails, so new parts of the folder report
// (no access, locks) are one function each.

import (
	"fmt"
	"io"
	"strings"

	"github.com/meshfold/meshfold/node"
)

// ANSI colours of the states.
const (
	colorGreen  = "\033[32m"
	colorBlue   = "\033[34m"
	colorYellow = "\033[33m"
	colorRed    = "\033[31m"
	colorGrey   = "\033[90m"
	colorReset  = "\033[0m"
)

// maxNamesShown bounds the names a status line lists (conflict copies...).
const maxNamesShown = 3

// look is how a state shows: symbol and colour on a terminal, label always.
type look struct {
	label, symbol, color string
}

var looks = map[string]look{
	node.PathSynced:   {"synced", "✓", colorGreen},
	node.PathSyncing:  {"syncing", "↻", colorBlue},
	node.PathConflict: {"conflict", "!", colorYellow},
	node.PathPaused:   {"paused", "‖", colorGrey},
	node.PathFailed:   {"error", "✗", colorRed},
	node.PathNoAccess: {"no access", "⊘", colorGrey},
	node.PathLocked:   {"locked", "🔒", colorYellow},
	"starting":        {"starting", "…", colorGrey},
}

// folderState classifies a folder report as a user sees it.
func folderState(f node.FolderReport) string {
	switch {
	case f.Access != "":
		return node.PathNoAccess
	case f.Paused:
		return node.PathPaused
	case f.State == "error":
		return node.PathFailed
	case f.State == "starting":
		return "starting"
	case f.NeedFiles > 0 || f.State == "syncing" || f.Scanning:
		return node.PathSyncing
	case f.Conflicts > 0:
		return node.PathConflict
	}
	return node.PathSynced
}

// folderDetails add the parts of a folder's line after its root; each
// returns "" when it has nothing to say.
var folderDetails = []func(f node.FolderReport) string{
	func(f node.FolderReport) string { return fmt.Sprintf("peers %d", f.Peers) },
	func(f node.FolderReport) string { return leftDetail(f.NeedFiles, f.NeedBytes) },
	func(f node.FolderReport) string {
		if !f.Scanning {
			return ""
		}
		return fmt.Sprintf("scanning: %s of %s hashed (%d %s)", humanBytes(f.ScanHashed), humanBytes(f.ScanBytes), f.ScanFiles, plural(f.ScanFiles, "file", "files"))
	},
	func(f node.FolderReport) string { return conflictDetail(f.Conflicts, f.ConflictNames) },
	func(f node.FolderReport) string {
		if f.Unshared > 0 {
			return fmt.Sprintf("%d local changes not shared (no write right)", f.Unshared)
		}
		return ""
	},
	func(f node.FolderReport) string {
		switch f.Access {
		case node.AccessPending:
			return "access request " + f.Request + " pending: waiting for a manager"
		case node.AccessDenied:
			return "access request " + f.Request + " denied"
		}
		return ""
	},
	func(f node.FolderReport) string {
		if len(f.NoAccess) == 0 {
			return ""
		}
		return "no access: /" + strings.Join(f.NoAccess, ", /")
	},
	func(f node.FolderReport) string {
		if f.Err != "" && f.State == "error" {
			return "error: " + f.Err
		}
		return ""
	},
}

func leftDetail(files int, bytes int64) string {
	if files == 0 {
		return ""
	}
	return fmt.Sprintf("%d %s, %s left", files, plural(files, "file", "files"), humanBytes(bytes))
}

func conflictDetail(n int, names []string) string {
	if n == 0 {
		return ""
	}
	s := fmt.Sprintf("%d %s", n, plural(n, "conflict", "conflicts"))
	shown := names[:min(len(names), maxNamesShown)]
	if len(shown) > 0 {
		s += ": " + strings.Join(shown, ", ")
		if n > len(shown) {
			s += ", ..."
		}
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// paint shows a state: "✓ synced" in colour on a terminal, "synced" otherwise.
func paint(state string, color bool) string {
	l, ok := looks[state]
	if !ok {
		l = look{label: state}
	}
	if !color {
		return fmt.Sprintf("%-9s", l.label)
	}
	return fmt.Sprintf("%s%s %-9s%s", l.color, l.symbol, l.label, colorReset)
}

// renderFolder is one folder's status line.
func renderFolder(f node.FolderReport, color bool) string {
	parts := []string{}
	for _, d := range folderDetails {
		if s := d(f); s != "" {
			parts = append(parts, s)
		}
	}
	return fmt.Sprintf("%s %s  %s  %s", paint(folderState(f), color), f.ID, f.Root, strings.Join(parts, ", "))
}

// renderStatus prints the whole report.
func renderStatus(w io.Writer, r node.StatusReport, color bool) {
	fmt.Fprintf(w, "Device %s\n", r.Device)
	for _, c := range r.Connections {
		if c.Relayed {
			fmt.Fprintf(w, "relayed  %s through %s (the relay limits its time and bytes)\n", c.Peer, c.Addr)
		}
	}
	if r.PausedAll {
		fmt.Fprintln(w, "All folders are paused ('meshfold resume --all' resumes them).")
	}
	if len(r.Folders) == 0 {
		fmt.Fprintln(w, "No folders yet: 'meshfold folder add <dir>' or 'meshfold join <key> <dir>'.")
	}
	for _, f := range r.Folders {
		fmt.Fprintln(w, renderFolder(f, color))
		for _, li := range f.Locks {
			fmt.Fprint(w, "  ")
			printLock(w, li)
		}
	}
}

// pathDetails are folderDetails for 'meshfold status <path>'.
var pathDetails = []func(p node.PathReport) string{
	func(p node.PathReport) string { return leftDetail(p.NeedFiles, p.NeedBytes) },
	func(p node.PathReport) string { return conflictDetail(p.Conflicts, p.ConflictNames) },
	func(p node.PathReport) string {
		if p.Err != "" {
			return "error: " + p.Err
		}
		return ""
	},
}

// renderPath prints one path's state, then the locks on it.
func renderPath(w io.Writer, abs string, p node.PathReport, color bool) {
	parts := []string{}
	for _, d := range pathDetails {
		if s := d(p); s != "" {
			parts = append(parts, s)
		}
	}
	line := fmt.Sprintf("%s %s", paint(p.State, color), abs)
	if len(parts) > 0 {
		line += "  " + strings.Join(parts, ", ")
	}
	fmt.Fprintln(w, line)
	for _, li := range p.Locks {
		fmt.Fprint(w, "  ")
		printLock(w, li)
	}
}
