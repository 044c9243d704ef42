package assert

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// OperandType is the static type of an operand a step kind adds.
type OperandType uint8

const (
	NumberOperand OperandType = iota + 1
	StringOperand
	DurationOperand
	BoolOperand
)

func (t OperandType) typ() typ {
	switch t {
	case NumberOperand:
		return tNumber
	case DurationOperand:
		return tDuration
	case BoolOperand:
		return tBool
	}
	return tString
}

// Operands are the named operands a step kind adds to the language, with
// their types: cert.expires_in (a duration), tls.version (a string). Names
// are words joined by dots. The runner's kind fills their values in
// (Response.SetString and the like).
type Operands map[string]OperandType

// Names lists the operands' names, sorted.
func (o Operands) Names() []string {
	out := make([]string, 0, len(o))
	for k := range o {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// CompileWith is Compile with the operands of a step kind besides the
// built-in ones.
func CompileWith(src string, ops Operands) (e *Expectation, err error) {
	defer catch(&err)
	p := &parser{src: src, ops: ops}
	return p.parseExpectation(), nil
}

// CompileValueWith is CompileValue with the operands of a step kind.
func CompileValueWith(src string, ops Operands) (v *Value, err error) {
	defer catch(&err)
	p := &parser{src: src, ops: ops}
	return &Value{src: strings.TrimSpace(src), node: p.parseValue()}, nil
}

// attr is the value of a kind's operand in a Response.
type attr struct {
	name string
	v    value
}

// SetString sets the kind operand name to s.
func (r *Response) SetString(name, s string) { r.set(name, value{k: kString, s: s}) }

// SetInt sets the kind operand name to the number i.
func (r *Response) SetInt(name string, i int64) {
	var v value
	v.setInt(i)
	r.set(name, v)
}

// SetNumber sets the kind operand name to the number f (a ratio, say).
func (r *Response) SetNumber(name string, f float64) {
	var v value
	v.setNumber(strconv.FormatFloat(f, 'g', -1, 64), f)
	r.set(name, v)
}

// SetDuration sets the kind operand name to d.
func (r *Response) SetDuration(name string, d time.Duration) {
	r.set(name, value{k: kDuration, i: int64(d)})
}

// SetBool sets the kind operand name to b.
func (r *Response) SetBool(name string, b bool) { r.set(name, value{k: kBool, b: b}) }

func (r *Response) set(name string, v value) {
	for i := range r.attrs {
		if r.attrs[i].name == name {
			r.attrs[i].v = v
			return
		}
	}
	r.attrs = append(r.attrs, attr{name, v})
}

// Reads says whether the expectation reads the kind operand name, so a
// kind can tell whether a flow checks a value itself (an expected NXDOMAIN)
// or leaves it to the kind's default.
func (e *Expectation) Reads(name string) bool {
	if e.left.reads(name) || e.right != nil && e.right.reads(name) {
		return true
	}
	return false
}

func (n *node) reads(name string) bool {
	if n == nil {
		return false
	}
	if n.op == nAttr && n.key == name {
		return true
	}
	for _, el := range n.listElems {
		if el.reads(name) {
			return true
		}
	}
	return n.arg.reads(name)
}

// attr looks a kind operand up: there are a handful, so a scan beats a map.
func (r *Response) attr(name string) (value, bool) {
	for i := range r.attrs {
		if r.attrs[i].name == name {
			return r.attrs[i].v, true
		}
	}
	return value{}, false
}

// parseOperand reads a kind's dotted operand starting at start (its first
// word already read up to p.pos), or returns nil when none matches. The
// longest name that matches wins.
func (p *parser) parseOperand(start int) *node {
	if len(p.ops) == 0 {
		return nil
	}
	best := -1
	j := p.pos
	for {
		if _, ok := p.ops[p.src[start:j]]; ok {
			best = j
		}
		if j+1 >= len(p.src) || p.src[j] != '.' || !isWordByte(p.src[j+1]) {
			break
		}
		j++
		for j < len(p.src) && isWordByte(p.src[j]) {
			j++
		}
	}
	if best < 0 {
		return nil
	}
	name := p.src[start:best]
	p.pos = best
	return &node{op: nAttr, typ: p.ops[name].typ(), src: SourceAttr, key: name}
}

// operandHint lists a kind's operands when an unknown name starts like one.
func (p *parser) operandHint(name string) string {
	if len(p.ops) == 0 {
		return ""
	}
	var near []string
	for _, n := range p.ops.Names() {
		if strings.HasPrefix(n, name+".") || n == name {
			near = append(near, n)
		}
	}
	if len(near) == 0 {
		return ""
	}
	return " (operands here: " + strings.Join(near, ", ") + ")"
}
