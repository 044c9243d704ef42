package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// browserFlow is the flow `prober demo` adds to its configuration when
// Chromium is installed. probes.yaml does not list it, so the shipped
// configuration runs (`prober run`, `once`, `validate`) and keeps its
// series budget and alert-quality numbers on machines without a browser;
// the demo, the one place that runs the storefront, shows it when it can.
const browserFlow = "flows/checkout_browser.yaml"

// errBrowserOff is why the browser flow is off with --browser=false.
var errBrowserOff = errors.New("--browser=false")

// withBrowserFlow returns fsys with the config at name listing
// browserFlow too (read afresh at each open, so a reload sees edits), and
// whether the flow is in it: false when the config's directory has no
// such file or its flows: list is not one the demo can add a line to.
func withBrowserFlow(fsys fs.FS, name string) (fs.FS, bool) {
	if _, err := fs.Stat(fsys, path.Join(path.Dir(name), browserFlow)); err != nil {
		return fsys, false
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return fsys, false
	}
	if _, ok := addBrowserFlow(data); !ok {
		return fsys, false
	}
	return overlayFS{FS: fsys, name: name}, true
}

// addBrowserFlow inserts browserFlow as an item of the block list of the
// top-level flows: key, after its last item when that is one line (no
// line before it moves, so errors keep their places), else before its
// first. ok is false when there is no such list; data is returned as it is
// when the list names the flow already.
func addBrowserFlow(data []byte) (out []byte, ok bool) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return data, false // the loader says what is wrong
	}
	root := doc.Content[0]
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "flows" {
			list = root.Content[i+1]
		}
	}
	if list == nil || list.Kind != yaml.SequenceNode || list.Style&yaml.FlowStyle != 0 || len(list.Content) == 0 {
		return data, false
	}
	for _, it := range list.Content {
		file := it.Value
		if it.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(it.Content); i += 2 {
				if it.Content[i].Value == "file" {
					file = it.Content[i+1].Value
				}
			}
		}
		if m, _ := path.Match(file, browserFlow); m || file == browserFlow {
			return data, true
		}
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	first, last := list.Content[0], list.Content[len(list.Content)-1]
	dash := first.Column - 3 // "  - item": the dash two columns before the item
	if dash < 0 || first.Line > len(lines) || !bytes.HasPrefix(lines[first.Line-1][dash:], []byte("- ")) {
		return data, false
	}
	item := []byte(strings.Repeat(" ", dash) + "- " + browserFlow + "\n")
	at := first.Line - 1
	if last.Kind == yaml.ScalarNode && !strings.Contains(last.Value, "\n") && last.Line <= len(lines) {
		at = last.Line
		if !bytes.HasSuffix(lines[last.Line-1], []byte("\n")) {
			item = append([]byte("\n"), item...)
		}
	}
	out = make([]byte, 0, len(data)+len(item))
	out = append(out, bytes.Join(lines[:at], nil)...)
	out = append(out, item...)
	out = append(out, bytes.Join(lines[at:], nil)...)
	return out, true
}

// overlayFS serves name with browserFlow added; everything else as fsys.
type overlayFS struct {
	fs.FS
	name string
}

func (o overlayFS) Open(name string) (fs.File, error) {
	f, err := o.FS.Open(name)
	if err != nil || name != o.name {
		return f, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return o.FS.Open(name) // the loader refuses it, with its reason
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return nil, err
	}
	data, _ = addBrowserFlow(data)
	return &memFile{Reader: bytes.NewReader(data), info: memInfo{FileInfo: st, size: int64(len(data))}}, nil
}

type memFile struct {
	*bytes.Reader
	info memInfo
}

func (m *memFile) Stat() (fs.FileInfo, error) { return m.info, nil }
func (m *memFile) Close() error               { return nil }

type memInfo struct {
	fs.FileInfo
	size int64
}

func (m memInfo) Size() int64 { return m.size }

// printBrowserNote says whether the demo runs the storefront's browser
// flow and, when Chromium is missing, how to install it.
func printBrowserNote(w io.Writer, shopURL, chromium string, findErr error, included bool) {
	switch {
	case errors.Is(findErr, errBrowserOff):
		fmt.Fprintf(w, "The browser flow (%s) is off: --browser=false.\n\n", browserFlow)
	case findErr != nil:
		fmt.Fprintf(w, `The browser flow (%s: the storefront's checkout in Chromium) is off: %v.
Install Chromium and start the demo again to run it, e.g.:
  sudo apt-get install chromium      (Debian, Ubuntu; Fedora: sudo dnf install chromium)

`, browserFlow, findErr)
	case !included:
		fmt.Fprintf(w, "The browser flow is off: this configuration's flows: list is not the shipped one's shape, or %s is missing beside it.\n\n", browserFlow)
	default:
		fmt.Fprintf(w, `The storefront's checkout runs in Chromium (%s, flow checkout_browser):
  storefront    %[2]s/store/login
Break its pages: curl -X PUT %[2]s/admin/faults -d '{"pay_script_error":true}'   (or pay_button_hidden, page_delay)

`, chromium, shopURL)
	}
}
