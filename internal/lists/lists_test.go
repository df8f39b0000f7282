package lists

import (
	"slices"
	"testing"
)

func TestAppendNew(t *testing.T) {
	got := AppendNew([]string{"a"}, "b", "", "a", "c", "b")
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
