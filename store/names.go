package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Limits on the paths the index accepts, from the disk or from the network.
const (
	// MaxComponentLength is the longest one path component may be, in bytes
	// (NAME_MAX on Linux and macOS; Windows counts UTF-16 units, which is never
	// more than the UTF-8 byte count).
	MaxComponentLength = 255
	// MaxPathLength is the longest a whole folder-relative path may be, in
	// bytes (PATH_MAX on Linux).
	MaxPathLength = 4096
)

// Errors returned by ValidatePath, wrapped with the offending path.
var (
	ErrEmptyPath          = errors.New("empty path")
	ErrPathTooLong        = fmt.Errorf("path longer than %d bytes", MaxPathLength)
	ErrInvalidUTF8        = errors.New("path is not valid UTF-8")
	ErrAbsolutePath       = errors.New("path is absolute or has a drive letter or UNC prefix")
	ErrEmptyComponent     = errors.New("path has an empty component (double or trailing slash)")
	ErrDotComponent       = errors.New(`path has a "." or ".." component`)
	ErrComponentTooLong   = fmt.Errorf("path component longer than %d bytes", MaxComponentLength)
	ErrControlChar        = errors.New("path contains a NUL or control character")
	ErrReservedChar       = errors.New(`path contains one of the characters < > : " \ | ? *`)
	ErrReservedName       = errors.New("path component is a reserved device name on Windows")
	ErrTrailingDotOrSpace = errors.New("path component ends with a dot or a space")
)

const errInvalidPathTemplate = "invalid path %q: %w"

// ValidatePath reports whether p is a folder-relative path that every
// mainstream OS can store and that stays inside the folder when joined to its
// root. p is slash-separated. It guards every path from the disk and from the
// network, so it is strict: anything Windows, macOS or Linux would refuse or
// treat specially is rejected. The error wraps one of the Err* sentinels above
// and names p.
func ValidatePath(p string) error {
	if err := validatePath(p); err != nil {
		return fmt.Errorf(errInvalidPathTemplate, p, err)
	}
	return nil
}

func validatePath(p string) error {
	switch {
	case p == "":
		return ErrEmptyPath
	case len(p) > MaxPathLength:
		return ErrPathTooLong
	case p[0] == '/' || p[0] == '\\':
		return ErrAbsolutePath
	case len(p) >= 2 && p[1] == ':' && isASCIILetter(p[0]):
		return ErrAbsolutePath
	}
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		if err := validateComponent(p[start:i]); err != nil {
			return err
		}
		start = i + 1
	}
	return nil
}

// ValidateName is ValidatePath for a single component (no slash allowed).
func ValidateName(name string) error {
	if strings.IndexByte(name, '/') >= 0 {
		return fmt.Errorf(errInvalidPathTemplate, name, ErrReservedChar)
	}
	if err := validatePath(name); err != nil {
		return fmt.Errorf(errInvalidPathTemplate, name, err)
	}
	return nil
}

func validateComponent(c string) error {
	switch {
	case c == "":
		return ErrEmptyComponent
	case c == "." || c == "..":
		return ErrDotComponent
	case len(c) > MaxComponentLength:
		return ErrComponentTooLong
	}
	for i := 0; i < len(c); {
		b := c[i]
		if b < utf8.RuneSelf {
			switch {
			case b < 0x20 || b == 0x7f:
				return ErrControlChar
			case b == '<' || b == '>' || b == ':' || b == '"' || b == '\\' || b == '|' || b == '?' || b == '*':
				return ErrReservedChar
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(c[i:])
		if r == utf8.RuneError && n <= 1 {
			return ErrInvalidUTF8
		}
		if r >= 0x80 && r <= 0x9f { // C1 controls
			return ErrControlChar
		}
		i += n
	}
	if last := c[len(c)-1]; last == '.' || last == ' ' {
		return ErrTrailingDotOrSpace
	}
	if isReservedDeviceName(c) {
		return ErrReservedName
	}
	return nil
}

func isASCIILetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }

// isReservedDeviceName reports whether Windows maps component c to a device:
// CON, PRN, AUX, NUL, COM0-9, LPT0-9 (including the superscript digits ¹²³),
// CONIN$ and CONOUT$, in any case, alone or followed by an extension, with
// trailing spaces before the extension ignored as Windows does.
func isReservedDeviceName(c string) bool {
	// Every reserved name starts with one of these letters: most names are
	// ruled out here, before any folding (a scan checks every entry).
	switch c[0] | 0x20 {
	case 'a', 'c', 'l', 'n', 'p':
	default:
		return false
	}
	stem := c
	if i := strings.IndexByte(stem, '.'); i >= 0 {
		stem = stem[:i]
	}
	stem = strings.TrimRight(stem, " ")
	if len(stem) < 3 || len(stem) > 7 {
		return false
	}
	switch {
	case strings.EqualFold(stem, "CON"), strings.EqualFold(stem, "PRN"),
		strings.EqualFold(stem, "AUX"), strings.EqualFold(stem, "NUL"),
		strings.EqualFold(stem, "CONIN$"), strings.EqualFold(stem, "CONOUT$"):
		return true
	}
	if len(stem) < 4 || !(strings.EqualFold(stem[:3], "COM") || strings.EqualFold(stem[:3], "LPT")) {
		return false
	}
	switch tail := stem[3:]; tail {
	case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "\u00b9", "\u00b2", "\u00b3":
		return true
	}
	return false
}

// foldKey is the key under which two names collide on a case-insensitive,
// normalising file system (Windows, macOS): Unicode case folding then NFC.
func foldKey(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(name)
	}
	return norm.NFC.String(cases.Fold().String(norm.NFC.String(name)))
}

// CaseCollision is a set of sibling paths that differ only in case or Unicode
// normalisation: they are distinct on Linux but one file on Windows and macOS.
type CaseCollision struct {
	Paths []string `json:"paths"`
}

// caseCollisions groups names (the entries of one directory, parent "" for the
// root) by foldKey and returns the groups with more than one member, in the
// order their first member appears in names.
func caseCollisions(parent string, names []string) []CaseCollision {
	if len(names) < 2 || allPlainASCII(names) {
		return nil
	}
	byKey := make(map[string][]int, len(names))
	var order []string
	for i, n := range names {
		k := foldKey(n)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	var out []CaseCollision
	for _, k := range order {
		if g := byKey[k]; len(g) > 1 {
			paths := make([]string, len(g))
			for j, i := range g {
				paths[j] = joinRel(parent, names[i])
			}
			out = append(out, CaseCollision{Paths: paths})
		}
	}
	return out
}

// allPlainASCII reports whether every name is ASCII without an upper-case
// letter: foldKey of each is then the name itself, so distinct names cannot
// collide (the common case, checked without building any key).
func allPlainASCII(names []string) bool {
	for _, n := range names {
		for i := 0; i < len(n); i++ {
			if c := n[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// joinRel joins a folder-relative directory and a name.
func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
