package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/proto"
)

// requestOnlyFlags are the task commands' flags that only matter when a
// request is sent, which `sealgate workers` never does. Strict mode's
// fresh evidence in particular is asked for only when a request is sealed:
// a listing cannot show its verdict.
var requestOnlyFlags = map[string]bool{"k": true, "strict": true, "progress": true, "quiet": true}

// runWorkers lists the gateway's candidates for a task with the verdict
// this client reaches on each, under the same policy, roots and anchor
// keys a task command would use. It fails with a *client.NoCandidateError
// (exit 3) when no candidate is verified, after printing the listing.
func runWorkers(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sealgate workers", flag.ContinueOnError)
	var cf clientFlags
	all := flag.NewFlagSet("", flag.ContinueOnError)
	cf.register(all)
	all.VisitAll(func(f *flag.Flag) { // the task commands' flags and help, less the request-only ones
		if !requestOnlyFlags[f.Name] {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	task := fs.String("task", proto.TaskSummarize, "the task whose candidates to list: "+proto.TaskSummarize+", "+proto.TaskTranslate+" or "+proto.TaskChat)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("workers takes no argument, found %q", fs.Args())}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	verified, refused, err := c.Workers(ctx, *task)
	if err != nil {
		return err
	}
	l := workerListing{Task: *task, Verified: verified, Refused: refused, Now: time.Now()}
	if cf.json {
		err = l.writeJSON(stdout)
	} else {
		err = l.writeTable(stdout)
	}
	if err != nil {
		return err
	}
	switch {
	case len(verified) > 0:
		return nil
	case len(refused) == 0:
		return &client.NoCandidateError{} // says the gateway listed none
	}
	return &client.NoCandidateError{Reason: fmt.Sprintf("all %d listed workers were refused (see the verdicts above)", len(refused))}
}

// workerListing is what `sealgate workers` prints: the verified
// candidates, then the refused ones, each in the gateway's order.
type workerListing struct {
	Task     string
	Verified []client.Worker
	Refused  []client.Refusal
	Now      time.Time // for the evidence's age
}

// measurementPrefix is how many hex digits of a measurement the table
// shows; -json has them all.
const measurementPrefix = 16

// writeTable prints one line per candidate. Only the verdict, the TEE
// kind, the measurement and the evidence's age are verified; the worker,
// provider, region and pool names are the gateway's word. A refused
// candidate shows only the names the gateway gave and the reason.
func (l workerListing) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tPROVIDER\tTEE\tVERDICT\tEVIDENCE AGE\tMEASUREMENT\tREGION\tPOOL\tREASON")
	for _, v := range l.Verified {
		m := v.Measurement
		if len(m) > measurementPrefix {
			m = m[:measurementPrefix] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t\n", dash(v.ID), dash(v.ProviderID), v.Kind, age(l.Now, v.EvidenceTime), m, dash(v.Region), dash(v.Pool))
	}
	for _, r := range l.Refused {
		fmt.Fprintf(tw, "%s\t%s\t-\tREFUSED\t-\t-\t-\t-\t%v\n", dash(r.WorkerID), dash(r.ProviderID), r.Err)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d verified, %d refused, for task %s\n", len(l.Verified), len(l.Refused), l.Task)
	return err
}

// dash stands in for a name the gateway left empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age is how old evidence made at t is at now, to the second; negative
// when t is ahead of this machine's clock.
func age(now, t time.Time) string {
	return now.Sub(t).Round(time.Second).String()
}

// workerJSON is one candidate in `sealgate workers -json`.
type workerJSON struct {
	ID         string `json:"id"`
	ProviderID string `json:"provider_id,omitempty"`
	// Verdict is "ok" or "refused".
	Verdict string `json:"verdict"`

	// For a verified candidate.
	Kind               string     `json:"kind,omitempty"`
	Simulated          bool       `json:"simulated,omitempty"`
	Measurement        string     `json:"measurement,omitempty"`
	Evidence           string     `json:"evidence_sha256,omitempty"`
	EvidenceTime       *time.Time `json:"evidence_time,omitempty"`
	EvidenceAgeSeconds *int64     `json:"evidence_age_seconds,omitempty"`
	Policy             string     `json:"policy,omitempty"`
	ProviderKey        []byte     `json:"provider_key,omitempty"`
	Region             string     `json:"region,omitempty"`
	Pool               string     `json:"pool,omitempty"`
	Models             []string   `json:"models,omitempty"`
	Capacity           int        `json:"capacity,omitempty"`
	Tasks              []string   `json:"tasks,omitempty"`

	// For a refused candidate: the reason, and the failed check's class
	// and field when the reason is an attestation or endorsement error.
	Reason string `json:"reason,omitempty"`
	Code   string `json:"code,omitempty"`
	Field  string `json:"field,omitempty"`
}

// writeJSON prints the listing as one JSON document.
func (l workerListing) writeJSON(w io.Writer) error {
	out := struct {
		Task     string       `json:"task"`
		Verified int          `json:"verified"`
		Refused  int          `json:"refused"`
		Workers  []workerJSON `json:"workers"`
	}{Task: l.Task, Verified: len(l.Verified), Refused: len(l.Refused), Workers: []workerJSON{}}
	for _, v := range l.Verified {
		t, secs := v.EvidenceTime, int64(l.Now.Sub(v.EvidenceTime)/time.Second)
		out.Workers = append(out.Workers, workerJSON{
			ID: v.ID, ProviderID: v.ProviderID, Verdict: "ok",
			Kind: v.Kind, Simulated: v.Simulated, Measurement: v.Measurement, Evidence: v.BundleHash,
			EvidenceTime: &t, EvidenceAgeSeconds: &secs, Policy: v.Policy, ProviderKey: v.ProviderKey,
			Region: v.Region, Pool: v.Pool, Models: v.Models, Capacity: v.Capacity, Tasks: v.Tasks,
		})
	}
	for _, r := range l.Refused {
		j := workerJSON{ID: r.WorkerID, ProviderID: r.ProviderID, Verdict: "refused", Reason: r.Err.Error()}
		var ae *attestation.Error
		var ee *client.EndorsementError
		switch {
		case errors.As(r.Err, &ae):
			j.Code, j.Field = string(ae.Code), ae.Field
		case errors.As(r.Err, &ee):
			j.Code, j.Field = "endorsement", ee.Field
		}
		out.Workers = append(out.Workers, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
