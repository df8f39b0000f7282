package schemas

import "testing"

func TestTagDescription(t *testing.T) {
	tests := []struct {
		tag, want string
		ok        bool
	}{
		{"description=Plain.", "Plain.", true},
		{"minimum=1,description=SSH port. Default 22.", "SSH port. Default 22.", true},
		{"description=a, b, c", "a, b, c", true},
		{`description=a\, b`, "a, b", true},
		{"description=x, y,minimum=1", "x, y", true},
		{"description=uses MIRROR=cn.", "uses MIRROR=cn.", true},
		{"enum=,enum=cn,description=Mirror; see A, B.", "Mirror; see A, B.", true},
		{"minimum=1", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := tagDescription(tt.tag)
		if got != tt.want || ok != tt.ok {
			t.Errorf("tagDescription(%q) = %q, %v; want %q, %v", tt.tag, got, ok, tt.want, tt.ok)
		}
	}
}
