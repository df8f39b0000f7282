// Package progress turns the engine's event stream and reports into what
// people and machines read: plain timestamped lines, a live view on a
// terminal, JSON lines, and the plan rendering.
package progress
