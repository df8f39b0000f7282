// Command applyreport measures the runs of bench/apply.sh and prints its
// table. It is a tool of the benchmark, not of mcplan.
//
//	applyreport measure FILE -- COMMAND [ARG...]
//	    runs COMMAND (its output passes through), then writes FILE: its
//	    wall time, CPU seconds (user+system, its children included) and
//	    peak RSS, with the machine's load average when it ended.
//	applyreport table DIR
//	    reads DIR/<N>/{first,noop,steady,plan,change}.json and DIR/<N>/timeline.json
//	    (mcplan graph --timeline --format json after the first apply) for
//	    every N and prints the benchmark's table and each first apply's
//	    critical path, split into waiting and mcplan's own work.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "applyreport:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) >= 4 && args[0] == "measure" && args[2] == "--":
		return measure(args[1], args[3:])
	case len(args) == 2 && args[0] == "table":
		return table(args[1])
	}
	return errors.New("usage: applyreport measure FILE -- COMMAND [ARG...] | applyreport table DIR")
}

// Measurement is one measured run.
type Measurement struct {
	Command  []string      `json:"command"`
	Wall     time.Duration `json:"wallNs"`
	CPU      time.Duration `json:"cpuNs"`
	MaxRSSKB int64         `json:"maxRSSKiB"`
	Load1    float64       `json:"load1"`
	Exit     int           `json:"exit"`
}

func measure(file string, command []string) error {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	m := Measurement{Command: command, Wall: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		m.Exit = exit.ExitCode()
	case err != nil:
		return err
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		m.MaxRSSKB = ru.Maxrss
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			m.Load1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, append(data, '\n'), 0o644); err != nil {
		return err
	}
	if m.Exit != 0 {
		return fmt.Errorf("%s exited %d", strings.Join(command, " "), m.Exit)
	}
	return nil
}

// timeline is the part of mcplan's Timeline JSON the table reads.
type timeline struct {
	Steps []struct {
		ID       string        `json:"id"`
		Critical bool          `json:"critical"`
		Elapsed  time.Duration `json:"elapsedNs"`
		Waiting  time.Duration `json:"waitingNs"`
		Work     time.Duration `json:"workNs"`
		Waits    []struct {
			What    string        `json:"what"`
			Elapsed time.Duration `json:"elapsedNs"`
		} `json:"waits"`
	} `json:"steps"`
	Wall            time.Duration `json:"wallNs"`
	CriticalWork    time.Duration `json:"criticalWorkNs"`
	CriticalWaiting time.Duration `json:"criticalWaitingNs"`
}

type size struct {
	n                                 int
	first, noop, steady, plan, change Measurement
	tl                                timeline
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func table(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var sizes []size
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		s := size{n: n}
		d := filepath.Join(dir, e.Name())
		for name, m := range map[string]*Measurement{"first": &s.first, "noop": &s.noop, "steady": &s.steady, "plan": &s.plan, "change": &s.change} {
			if err := readJSON(filepath.Join(d, name+".json"), m); err != nil {
				return err
			}
		}
		if err := readJSON(filepath.Join(d, "timeline.json"), &s.tl); err != nil {
			return err
		}
		sizes = append(sizes, s)
	}
	if len(sizes) == 0 {
		return fmt.Errorf("%s: no measurements", dir)
	}
	slices.SortFunc(sizes, func(a, b size) int { return a.n - b.n })
	one := sizes[0]
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clusters\tfirst apply\tno-op re-apply\tshare\tsteady no-op\tshare\tonline plan\tmeshConfig apply\tfirst N/1\tCPU first\tCPU/cluster\tpeak RSS\tcrit. work\tcrit. waiting\twork share\tload1\t")
	for _, s := range sizes {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1f%%\t%s\t%.1f%%\t%s\t%s\t%.2f\t%s\t%s\t%d MiB\t%s\t%s\t%.1f%%\t%.2f\t\n",
			s.n, sec(s.first.Wall), sec(s.noop.Wall), pct(s.noop.Wall, s.first.Wall), sec(s.steady.Wall), pct(s.steady.Wall, s.first.Wall), sec(s.plan.Wall), sec(s.change.Wall),
			float64(s.first.Wall)/float64(one.first.Wall),
			sec(s.first.CPU), sec(s.first.CPU/time.Duration(s.n)), s.first.MaxRSSKB/1024,
			sec(s.tl.CriticalWork), sec(s.tl.CriticalWaiting), pct(s.tl.CriticalWork, s.first.Wall), s.first.Load1)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range sizes {
		fmt.Printf("\nfirst apply of %d cluster(s): critical path (step: run = waiting + own work; waits)\n", s.n)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		for _, st := range s.tl.Steps {
			if !st.Critical {
				continue
			}
			var waits []string
			for _, w := range st.Waits {
				waits = append(waits, fmt.Sprintf("%s %s", w.What, sec(w.Elapsed)))
			}
			fmt.Fprintf(tw, "  %s\t%s = %s + %s\t%s\n", st.ID, sec(st.Elapsed), sec(st.Waiting), sec(st.Work), strings.Join(waits, "; "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func pct(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
