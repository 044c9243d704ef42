package browserkind

// Find returns the Chromium a browser step of a kind without
// Options.Chromium starts (the first of Binaries on PATH), or why there is
// none: for `prober demo`, which runs its browser flow only with one.
func Find() (string, error) { return findChromium("") }
