package config

import (
	"strconv"
	"strings"

	"github.com/prober-dev/prober/internal/suggest"
)

// didYouMean returns ` (did you mean "x"?)` for the candidate closest to name
// within edit distance 2, or "" when none is close enough to help.
func didYouMean(name string, candidates []string) string {
	if s := closest(name, candidates); s != "" {
		return " (did you mean " + strconv.Quote(s) + "?)"
	}
	return ""
}

func closest(name string, candidates []string) string {
	return suggest.Closest(name, candidates, 2)
}

func isLower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return isLower(c) || isUpper(c) }

// matches reports whether s is non-empty, its first byte satisfies first and
// the rest satisfy rest.
func matches(s string, first, rest func(byte) bool) bool {
	if s == "" || !first(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !rest(s[i]) {
			return false
		}
	}
	return true
}

// validSlug is [a-z0-9][a-z0-9_-]*: regions, flow names and dependencies end
// up as Prometheus label values and in URLs of the status page.
func validSlug(s string) bool {
	return matches(s,
		func(c byte) bool { return isLower(c) || isDigit(c) },
		func(c byte) bool { return isLower(c) || isDigit(c) || c == '_' || c == '-' })
}

// validStepName is [A-Za-z0-9_-]+.
func validStepName(s string) bool {
	f := func(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '-' }
	return matches(s, f, f)
}

// validIdent is [A-Za-z_][A-Za-z0-9_]*: capture names and label keys.
func validIdent(s string) bool {
	return matches(s,
		func(c byte) bool { return isLetter(c) || c == '_' },
		func(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' })
}

// validVarName is what a {{name}} placeholder accepts:
// [A-Za-z_][A-Za-z0-9_.-]*. Variables and secrets must be referable.
func validVarName(s string) bool {
	return matches(s,
		func(c byte) bool { return isLetter(c) || c == '_' },
		func(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '-' || c == '.' })
}

// validEnvName is what ${env:NAME} accepts.
func validEnvName(s string) bool {
	return matches(s,
		func(c byte) bool { return isLetter(c) || c == '_' },
		func(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' })
}

// validToken is an RFC 7230 token: HTTP methods and header names.
func validToken(s string) bool {
	f := func(c byte) bool {
		return isLetter(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
	}
	return matches(s, f, f)
}

func isBuiltin(name string) bool {
	for _, b := range Builtins {
		if b == name {
			return true
		}
	}
	return false
}
