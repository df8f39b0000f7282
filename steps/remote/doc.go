// Package remote runs commands and uploads files on hosts over SSH, with
// host keys verified against known_hosts or pinned on first use.
//
// One Client is one connection to one host; commands are sessions on it.
package remote
