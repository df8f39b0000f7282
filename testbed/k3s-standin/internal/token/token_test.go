package token

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tok, err := Parse("K10" + hash + "::server:s3cret\n")
	if err != nil || tok.CAHash != hash || tok.Username != "server" || tok.Secret != "s3cret" {
		t.Fatalf("Parse K10: %+v %v", tok, err)
	}
	if tok.String() != "K10"+hash+"::server:s3cret" {
		t.Fatalf("String: %s", tok)
	}
	if bare, err := Parse("plain"); err != nil || bare.CAHash != "" || bare.Secret != "plain" {
		t.Fatalf("bare: %+v %v", bare, err)
	}
	for _, bad := range []string{"", "K10xyz::server:a", "K10" + hash + "::nosecret", "K10" + hash} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
