package main

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/mdp/qrterminal/v3"
)

// isTerminal reports whether w is a terminal (not a pipe or a file).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// useColor: colour and symbols only on a terminal, and never with NO_COLOR
// set (https://no-color.org).
func useColor(w io.Writer) bool {
	return isTerminal(w) && os.Getenv("NO_COLOR") == ""
}

// printQR draws s as a QR code in half-block characters, with low error
// correction so a long invitation key still fits a terminal.
func printQR(w io.Writer, s string) {
	qrterminal.GenerateHalfBlock(s, qrterminal.L, w)
}
