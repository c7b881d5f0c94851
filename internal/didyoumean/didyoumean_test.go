package didyoumean

import "testing"

func TestSuggest(t *testing.T) {
	known := []string{"source", "memory", "timeout", "minWarm"}
	tests := []struct{ key, want string }{
		{"tmeout", ` (did you mean "timeout"?)`},
		{"MEMORY", ` (did you mean "memory"?)`},
		{"minwarm", ` (did you mean "minWarm"?)`},
		{"sauce", ` (did you mean "source"?)`},
		{"routes", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.key, known); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
