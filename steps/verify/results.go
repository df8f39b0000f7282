package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// Count returns how many checks the results hold and how many failed.
func Count(results []Result) (total, failed int) {
	for _, r := range results {
		total += len(r.Findings)
		failed += len(Failed(r.Findings))
	}
	return total, failed
}

// WriteText prints a mesh's findings as a table, then its xDS tables.
func WriteText(w io.Writer, r Result) error {
	fmt.Fprintf(w, "Mesh %s:\n", r.Mesh)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CHECK\tCLUSTER\tOBJECT\tRESULT\tDETAIL")
	for _, f := range r.Findings {
		result := "OK"
		if !f.OK {
			result = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.Check, f.Cluster, f.Object, result, f.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return WriteXDSReports(w, r.XDS)
}

// The JSON document of `mcplan verify -o json`.
type (
	Document struct {
		Meshes []MeshDocument `json:"meshes"`
		Checks int            `json:"checks"`
		Failed int            `json:"failed"`
	}
	MeshDocument struct {
		Mesh   string            `json:"mesh"`
		Checks []FindingDocument `json:"checks"`
		XDS    []XDSDocument     `json:"xds,omitempty"`
	}
	FindingDocument struct {
		Check   string `json:"check"`
		Cluster string `json:"cluster"`
		Object  string `json:"object"`
		OK      bool   `json:"ok"`
		Detail  string `json:"detail"`
	}
	XDSDocument struct {
		XDSReport
		OK bool `json:"ok"`
	}
)

// WriteJSON prints the results as one JSON Document.
func WriteJSON(w io.Writer, results []Result) error {
	total, failed := Count(results)
	doc := Document{Meshes: []MeshDocument{}, Checks: total, Failed: failed}
	for _, r := range results {
		m := MeshDocument{Mesh: r.Mesh, Checks: []FindingDocument{}}
		for _, f := range r.Findings {
			m.Checks = append(m.Checks, FindingDocument{Check: f.Check, Cluster: f.Cluster, Object: f.Object, OK: f.OK, Detail: f.Detail})
		}
		for _, x := range r.XDS {
			m.XDS = append(m.XDS, XDSDocument{XDSReport: x, OK: x.OK()})
		}
		doc.Meshes = append(doc.Meshes, m)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
