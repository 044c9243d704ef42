package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"expcet", "expect", 2}, {"kitten", "sitting", 3}, {"日本", "日本語", 1}} {
		if got := Distance(tt.a, tt.b); got != tt.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"expect", "capture", "request", "timeout"}
	for _, tt := range []struct {
		name string
		max  int
		want string
	}{
		{"expcet", 2, "expect"},
		{"captur", 2, "capture"},
		{"zzzzzz", 2, ""},
		{"x", 2, ""},      // one letter matches nothing
		{"expect", 2, ""}, // itself is not a suggestion
		{"expcet", 1, ""}, // beyond the distance
		{"reqest", 1, "request"},
	} {
		if got := Closest(tt.name, known, tt.max); got != tt.want {
			t.Errorf("Closest(%q, %d) = %q, want %q", tt.name, tt.max, got, tt.want)
		}
	}
}
